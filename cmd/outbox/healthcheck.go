package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// errNotReady is the exit status 1 of a health check that got an answer
// other than ready, or none.
type errNotReady struct{ msg string }

func (e *errNotReady) Error() string { return e.msg }
func (e *errNotReady) ExitCode() int { return 1 }

// runHealthcheck implements 'outbox healthcheck [URL]': GET /readyz of a
// running daemon, exit 0 when it answers 200. It exists because the
// container image has no curl: Docker's HEALTHCHECK runs the binary itself.
func runHealthcheck(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := new(time.Duration)
	durationVar(fs, timeout, "timeout", 5*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			h := helpFor("healthcheck", fs)
			h.synopsis = "outbox healthcheck [--timeout DURATION] [URL]"
			return h
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 1 {
		return usagef("unexpected argument %q", fs.Arg(1))
	}
	target, err := healthURL(fs.Arg(0))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	status, err := probeReady(ctx, target)
	if err != nil {
		return &errNotReady{err.Error()}
	}
	fmt.Fprintln(stdout, status)
	return nil
}

// healthURL is the /readyz URL to ask: the argument (with /readyz added
// when it has no path), or the address 'outbox serve' would listen on
// given the same environment (OUTBOX_HTTP, OUTBOX_HTTP_TLS_CERT), reached
// over loopback when it binds every interface.
func healthURL(arg string) (*url.URL, error) {
	if arg == "" {
		addr := firstNonEmpty(os.Getenv("OUTBOX_HTTP"), "127.0.0.1:8025")
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, usagef("OUTBOX_HTTP %q: %v", addr, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
			if ip != nil && ip.To4() == nil {
				host = "::1"
			}
		}
		scheme := "http"
		if os.Getenv("OUTBOX_HTTP_TLS_CERT") != "" {
			scheme = "https"
		}
		arg = scheme + "://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(arg)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("%q is not an http:// or https:// URL", arg)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/readyz"
	}
	return u, nil
}

// probeReady asks once. The daemon's certificate names its public host,
// not the loopback address a container health check dials, so over
// loopback it is not verified; the check sends nothing secret and only
// reads the status.
func probeReady(ctx context.Context, u *url.URL) (string, error) {
	tr := &http.Transport{Proxy: nil}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || strings.EqualFold(u.Hostname(), "localhost") {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback only, see above
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("not ready: %s: %v", u.Redacted(), err)
	}
	defer resp.Body.Close()
	var body struct{ Status, Reason, Error string }
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("not ready: %s answered %s", u.Redacted(), resp.Status)
		if body.Error != "" {
			msg += ": " + body.Error
		}
		return "", errors.New(msg)
	}
	return firstNonEmpty(body.Status, "ready"), nil
}
