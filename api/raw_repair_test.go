package api

import (
	"context"
	"net/http"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A raw upload gets Date and Message-ID (on the configured host name) when
// it has none, and an empty line when it has no header block; nothing
// else of it changes.
func TestRawRepairs(t *testing.T) {
	e := setup(t, Config{Hostname: "mx.api.test"}, false)
	repaired := regexp.MustCompile(`^Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n` +
		`Message-ID: <[0-9a-f]{32}@mx\.api\.test>\r\n`)
	tests := []struct {
		name, query, msg string
		date, id         bool // added
		separator        bool // the empty line added
	}{
		{"both missing", "", lines("From: a@example.com\nTo: b@example.com\nSubject: s\n\nbody\n"), true, true, false},
		{"date missing", "", lines("From: a@example.com\nTo: b@example.com\nmessage-id: <x@y>\n\nbody\n"), true, false, false},
		{"id missing", "", lines("DATE: Sun, 01 Mar 2026 12:00:00 +0000\nFrom: a@example.com\nTo: b@example.com\n\nbody\n"), false, true, false},
		{"no header block", "?from=a@example.com&to=b@example.com", lines("Hello Bob,\nSubject: not a header\n\nbye\n"), true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/v1/messages/raw"+tt.query, strings.NewReader(tt.msg))
			if r.Status != http.StatusAccepted {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			var a accepted
			r.decode(t, &a)
			got := storedBody(t, e, a.ID)
			if m, err := e.client.Get(context.Background(), a.ID); err != nil {
				t.Fatal(err)
			} else if want := wantRepairs(tt.date, tt.id, tt.separator); !slices.Equal(m.Repairs, want) {
				t.Errorf("recorded repairs %q, want %q", m.Repairs, want)
			}
			rest := got
			if tt.date {
				rest = rest[strings.Index(rest, "\r\n")+2:]
			}
			if tt.id {
				rest = rest[strings.Index(rest, "\r\n")+2:]
			}
			if tt.date && tt.id && !repaired.MatchString(got) {
				t.Errorf("no Date and Message-ID added: %q", got)
			}
			if tt.date != strings.HasPrefix(got, "Date: ") || tt.id != strings.Contains(got, "@mx.api.test>") {
				t.Errorf("stored %q: date added %v, id added %v", got, tt.date, tt.id)
			}
			want := tt.msg
			if tt.separator {
				want = "\r\n" + tt.msg
			}
			if rest != want {
				t.Errorf("stored after the added fields %q, want %q", rest, want)
			}
			m, err := mail.ReadMessage(strings.NewReader(got))
			if err != nil || m.Header.Get("Date") == "" || m.Header.Get("Message-ID") == "" {
				t.Errorf("repaired message does not parse with Date and Message-ID: %v", err)
			}
		})
	}
}

// wantRepairs lists what the raw upload must record having added, in order.
func wantRepairs(date, id, separator bool) []string {
	var out []string
	if date {
		out = append(out, "date")
	}
	if id {
		out = append(out, "message-id")
	}
	if separator {
		out = append(out, "header-block")
	}
	return out
}

// A header line over 998 octets could never be relayed: the upload is
// refused naming the limit, and nothing is stored.
func TestRawRefusesLongHeaderLine(t *testing.T) {
	e := setup(t, Config{}, false)
	msg := lines("From: a@example.com\nTo: b@example.com\nX-Long: " + strings.Repeat("y", 1200) + "\n\nbody\n")
	r := e.do("POST", "/v1/messages/raw", strings.NewReader(msg))
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(r.apiErr(t).Msg, "998") {
		t.Fatalf("status %d %s, want 422 naming the 998-octet limit", r.Status, r.Body)
	}
	if n := e.total(); n != 0 {
		t.Errorf("store holds %d messages", n)
	}
}
