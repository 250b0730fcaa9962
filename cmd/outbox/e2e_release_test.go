package main_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestReleaseCapturedE2E: outbox serve in capture mode with a release
// relay; the dashboard releases a captured message to a recipient chosen
// there, after the confirmation step, and the relay (a real go-smtp
// server) receives the stored bytes; the daemon logs who released what.
func TestReleaseCapturedE2E(t *testing.T) {
	relay := startSink(t, smtpsink.Options{})
	d := startDaemon(t, t.TempDir(), "--release-relay", "smtp://"+relay.Addr()+"?starttls=off")
	raw := "From: Shop <shop@example.com>\r\nTo: ann@example.org\r\nSubject: Reset your password\r\n\r\nhttps://shop.example/reset/abc\r\n"
	var sent struct{ ID string }
	if code := d.api("POST", "/v1/messages/raw", "message/rfc822", strings.NewReader(raw), &sent); code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d", code)
	}
	d.waitStatus(sent.ID, queue.StatusDelivered)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	base := "http://" + d.httpAddr
	do := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == "GET" {
			resp, err = c.Get(base + path)
		} else {
			resp, err = c.PostForm(base+path, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := do("POST", "/login", url.Values{"token": {"e2e-token-0123456789"}}); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	code, body := do("GET", "/messages/"+sent.ID+"/release", nil)
	m := csrfField.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil || !strings.Contains(body, ">ann@example.org</textarea>") ||
		!strings.Contains(body, `<option value="relay:`+relay.Addr()+`" selected>`) {
		t.Fatalf("release form: %d\n%s", code, body)
	}
	form := url.Values{"csrf": {m[1]}, "step": {"confirm"}, "to": {"qa@example.net"}, "route": {"relay:" + relay.Addr()}}
	if code, body := do("POST", "/messages/"+sent.ID+"/release", form); code != http.StatusOK || !strings.Contains(body, `id="release-send"`) {
		t.Fatalf("confirmation: %d\n%s", code, body)
	}
	if n := len(relay.Received()); n != 0 {
		t.Fatalf("%d messages sent before the confirmation was posted", n)
	}
	form.Set("step", "send")
	if code, body := do("POST", "/messages/"+sent.ID+"/release", form); code != http.StatusOK || !strings.Contains(body, `id="release-done"`) {
		t.Fatalf("send: %d\n%s", code, body)
	}
	got := relay.Received()
	if len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "qa@example.net" || !bytes.HasSuffix(got[0].Data, []byte(raw[strings.Index(raw, "From:"):])) {
		t.Fatalf("relay received %+v", got)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(d.logs.String(), `msg="web: released captured message" id=`+sent.ID); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no audit line for the release:\n%s", d.logs)
		}
	}
}
