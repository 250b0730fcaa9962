package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/internal/logbuf"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/smtp"
)

// releaseStack is a capture stack whose dashboard releases through the
// stack's go-smtp sink with the smtp package's client, as outbox serve
// does through a relay; log collects the dashboard's log.
func releaseStack(t *testing.T, tokens []string) (*stack, *logbuf.Buffer) {
	log := &logbuf.Buffer{}
	var s *stack
	s = newStackWith(t, tokens, true, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
		c.ReleaseRoutes = []string{"relay:sink", "relay:elsewhere"}
		c.Release = func(ctx context.Context, id string, to []string, route string) error {
			if route != "relay:sink" {
				return fmt.Errorf("route %s is down", route)
			}
			return releaseThrough(ctx, s, id, to)
		}
	})
	return s, log
}

// releaseThrough sends message id from s's store to s's sink.
func releaseThrough(ctx context.Context, s *stack, id string, to []string) error {
	m, err := s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	body, err := s.store.OpenBody(ctx, id)
	if err != nil {
		return err
	}
	defer body.Close()
	relay, err := smtp.ParseRelayURL("smtp://" + s.sink.Addr() + "?starttls=off")
	if err != nil {
		return err
	}
	c, err := smtp.Dial(ctx, relay.Addr(), relay.Options(&smtp.Options{LocalName: "dashboard.test"}))
	if err != nil {
		return err
	}
	_, err = c.SendAndQuit(ctx, &smtp.Envelope{From: m.From, Recipients: to, Size: m.Size}, body)
	return err
}

// TestRelease: a captured message is released only after the
// confirmation step, to the recipients chosen, byte for byte, and the
// release is logged; every step is a CSRF-protected form; bad input
// sends nothing.
func TestRelease(t *testing.T) {
	s, log := releaseStack(t, []string{testToken})
	id := s.sendRaw(t, cidRaw(t))
	s.waitStatus(t, id, queue.StatusDelivered)
	c := client(t)
	csrf := login(t, s, c)
	_, body := get(t, c, s.srv.URL+"/messages/"+id)
	if !strings.Contains(body, `<a class="button" id="release" href="/messages/`+id+`/release">`) {
		t.Fatal("captured message page lacks the release link")
	}
	_, body = get(t, c, s.srv.URL+"/messages/"+id+"/release")
	if !strings.Contains(body, "<textarea id=\"release-to\" name=\"to\" rows=\"4\" required>ok@example.org\nbob@example.org</textarea>") ||
		!strings.Contains(body, `<option value="relay:sink" selected>relay:sink</option>`) {
		i := strings.Index(body, "<form")
		t.Fatalf("release form lacks the original recipient or the default route:\n%s", body[max(i, 0):])
	}
	u := s.srv.URL + "/messages/" + id + "/release"
	form := func(step, to, route string) url.Values {
		return url.Values{"csrf": {csrf}, "step": {step}, "to": {to}, "route": {route}}
	}
	// Without the CSRF token, or from another site, nothing happens.
	noToken := form("send", "ann@example.net", "relay:sink")
	noToken.Del("csrf")
	if resp, _ := post(t, c, u, noToken, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("release without CSRF token: %d", resp.StatusCode)
	}
	if resp, _ := post(t, c, u, form("send", "ann@example.net", "relay:sink"), map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site release: %d", resp.StatusCode)
	}
	// Bad input is refused with the reason.
	for _, f := range []struct {
		form url.Values
		want string
	}{
		{form("confirm", "not an address", "relay:sink"), "is not an email address"},
		{form("send", "a@example.net\r\nRCPT TO:<x@evil.example>", "relay:sink"), "is not an email address"},
		{form("send", " , ", "relay:sink"), "at least one recipient"},
		{form("send", "a@example.net", "relay:nowhere"), "Choose one of the routes"},
	} {
		resp, body := post(t, c, u, f.form, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, f.want) {
			t.Errorf("release %v: %d, want 400 saying %q", f.form, resp.StatusCode, f.want)
		}
	}
	// The confirmation says what will happen and sends nothing.
	resp, body := post(t, c, u, form("confirm", "ann@example.net\nBob@Example.net, bob@example.net", "relay:sink"), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<strong id="release-via">relay:sink</strong>`) ||
		!strings.Contains(body, "<li><code>ann@example.net</code></li><li><code>Bob@Example.net</code></li></ul>") ||
		!strings.Contains(body, `<button type="submit" id="release-send" class="danger">Send now</button>`) {
		t.Fatalf("confirmation: %d\n%s", resp.StatusCode, body)
	}
	if n := len(s.sink.Received()); n != 0 {
		t.Fatalf("%d messages sent before the confirmation was posted", n)
	}
	resp, body = post(t, c, u, form("send", "ann@example.net\nBob@Example.net", "relay:sink"), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="release-done">Sent through relay:sink to ann@example.net, Bob@Example.net.`) {
		t.Fatalf("send: %d\n%s", resp.StatusCode, body)
	}
	got := s.sink.Received()
	if len(got) != 1 || !slices.Equal(got[0].To, []string{"ann@example.net", "Bob@Example.net"}) || got[0].From != "support@shop.example" {
		t.Fatalf("sink received %+v", got)
	}
	stored := readAll(t, s, id)
	if !bytes.Equal(got[0].Data, stored) {
		t.Errorf("released %d bytes, stored %d: not the same message", len(got[0].Data), len(stored))
	}
	line := log.String()
	if !strings.Contains(line, `msg="web: released captured message" id=`+id+` to="[ann@example.net Bob@Example.net]" route=relay:sink session=`) ||
		strings.Contains(line, testToken) {
		t.Errorf("audit log: %s", line)
	}
	// A failing route says so, and is logged as a failure.
	resp, body = post(t, c, u, form("send", "ann@example.net", "relay:elsewhere"), nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "route relay:elsewhere is down") {
		t.Errorf("failed release: %d", resp.StatusCode)
	}
	if !strings.Contains(log.String(), `msg="web: release failed" id=`+id) {
		t.Error("a failed release is not logged")
	}
}

// TestReleaseOnlyCaptured: a message that was delivered for real cannot be
// released, and without Config.Release there is nothing to release with.
func TestReleaseOnlyCaptured(t *testing.T) {
	s := newStackWith(t, []string{testToken}, false, func(c *Config) {
		c.ReleaseRoutes = []string{"relay:sink"}
		c.Release = func(context.Context, string, []string, string) error { return fmt.Errorf("must not be called") }
	})
	id := s.send(t, `{"from":"a@example.com","to":["ok@example.org"],"subject":"real","text":"x"}`)
	s.waitStatus(t, id, queue.StatusDelivered)
	c := client(t)
	csrf := login(t, s, c)
	if resp, _ := get(t, c, s.srv.URL+"/messages/"+id+"/release"); resp.StatusCode != http.StatusConflict {
		t.Errorf("release form of a delivered message: %d", resp.StatusCode)
	}
	if resp, _ := post(t, c, s.srv.URL+"/messages/"+id+"/release", url.Values{"csrf": {csrf}, "step": {"send"},
		"to": {"x@example.net"}, "route": {"relay:sink"}}, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("release of a delivered message: %d", resp.StatusCode)
	}
	_, body := get(t, c, s.srv.URL+"/messages/"+id)
	if strings.Contains(body, `id="release"`) {
		t.Error("a delivered message offers release")
	}
	plain := newStack(t, nil, true)
	cid := plain.send(t, `{"from":"a@example.com","to":["ok@example.org"],"subject":"captured","text":"x"}`)
	plain.waitStatus(t, cid, queue.StatusDelivered)
	if resp, _ := get(t, client(t), plain.srv.URL+"/messages/"+cid+"/release"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("release without Config.Release: %d", resp.StatusCode)
	}
	if _, err := New(Config{Client: s.client, Release: func(context.Context, string, []string, string) error { return nil }}); err == nil {
		t.Error("New accepted Release without ReleaseRoutes")
	}
}

func readAll(t *testing.T, s *stack, id string) []byte {
	t.Helper()
	rc, err := s.store.OpenBody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
