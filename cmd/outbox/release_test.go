package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

func sink(t *testing.T, opts smtpsink.Options) *smtpsink.Sink {
	t.Helper()
	s, err := smtpsink.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// releaseStore is a SQLite store holding one captured-looking message.
func releaseStore(t *testing.T, body string, eightBit bool) (*sqlite.Store, string) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "outbox.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := st.Enqueue(context.Background(), queue.NewMessage{From: "shop@example.com", Recipients: []string{"orig@example.org"},
		Subject: "Receipt", Body: strings.NewReader(body), Flags: queue.Flags{EightBit: eightBit}})
	if err != nil {
		t.Fatal(err)
	}
	return st, id
}

// TestReleaser: the relays offered are --release-relay, the default relay
// and the relay routes, never an MX route; a release sends the stored
// bytes to the recipients given, and says which ones a relay refused.
func TestReleaser(t *testing.T) {
	a := sink(t, smtpsink.Options{Rcpt: func(to string) error {
		if strings.HasPrefix(to, "nobody@") {
			return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	b := sink(t, smtpsink.Options{Hide: []string{"8BITMIME"}})
	cfg, err := parseServeConfig([]string{"--release-relay", "smtp://" + a.Addr() + "?starttls=off",
		"--route", "example.org=smtp://" + b.Addr() + "?starttls=off", "--route", "example.net=mx"})
	if err != nil {
		t.Fatal(err)
	}
	const body = "From: Shop <shop@example.com>\r\nSubject: Receipt\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nDanke schön.\r\n"
	st, id := releaseStore(t, body, true)
	r, err := newReleaser(cfg, st)
	if err != nil || r == nil {
		t.Fatalf("newReleaser: %v, %v", r, err)
	}
	wantRoutes := []string{"relay:" + a.Addr(), "route:example.org (relay:" + b.Addr() + ")"}
	if got := r.routes(); !slices.Equal(got, wantRoutes) {
		t.Fatalf("routes %q, want %q", got, wantRoutes)
	}
	ctx := context.Background()
	if err := r.release(ctx, id, []string{"qa@example.net", "dev@example.net"}, wantRoutes[0]); err != nil {
		t.Fatalf("release: %v", err)
	}
	got := a.Received()
	if len(got) != 1 || !slices.Equal(got[0].To, []string{"qa@example.net", "dev@example.net"}) ||
		got[0].From != "shop@example.com" || !bytes.Equal(got[0].Data, []byte(body)) || !got[0].EightBit {
		t.Fatalf("relay a received %+v", got)
	}
	// A relay without 8BITMIME gets the body downgraded.
	if err := r.release(ctx, id, []string{"qa@example.org"}, wantRoutes[1]); err != nil {
		t.Fatalf("release through the route: %v", err)
	}
	if got := b.Received(); len(got) != 1 || bytes.Contains(got[0].Data, []byte("schön")) ||
		!bytes.Contains(got[0].Data, []byte("Content-Transfer-Encoding: quoted-printable")) {
		t.Fatalf("relay b received %+v", got)
	}
	err = r.release(ctx, id, []string{"qa@example.net", "nobody@example.net"}, wantRoutes[0])
	if err == nil || !strings.Contains(err.Error(), "sent to qa@example.net; refused nobody@example.net:") || !strings.Contains(err.Error(), "550") {
		t.Errorf("partly refused release: %v", err)
	}
	if err := r.release(ctx, id, []string{"qa@example.net"}, "mx"); err == nil {
		t.Error("release through an unnamed relay succeeded")
	}
	if err := r.release(ctx, "0190a1b2-0000-7000-8000-000000000000", []string{"qa@example.net"}, wantRoutes[0]); err == nil {
		t.Error("release of a missing message succeeded")
	}
}

// TestReleaserNoRelay: with nothing to release through there is no
// releaser, and a relay that cannot be reached fails without the
// password in the error.
func TestReleaserNoRelay(t *testing.T) {
	st, id := releaseStore(t, "Subject: x\r\n\r\nx\r\n", false)
	cfg, err := parseServeConfig([]string{"--route", "example.net=mx"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := newReleaser(cfg, st); r != nil || err != nil {
		t.Fatalf("newReleaser without relays: %v, %v", r, err)
	}
	cfg, err = parseServeConfig([]string{"--release-relay", "smtp://user:hunter2-secret@127.0.0.1:1?starttls=off", "--timeout-connect", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReleaser(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	err = r.release(context.Background(), id, []string{"qa@example.net"}, "relay:127.0.0.1:1")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("release through a closed port: %v", err)
	}
	cfg, err = parseServeConfig([]string{"--release-relay", "ftp://nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newReleaser(cfg, st); err == nil || !strings.Contains(err.Error(), "--release-relay #1") {
		t.Errorf("a bad --release-relay: %v", err)
	}
}
