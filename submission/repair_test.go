package submission

import (
	"io"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var addedFields = regexp.MustCompile(`^(Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n)?` +
	`(Message-ID: <[0-9a-f]{32}@mx\.outbox\.test>\r\n)?`)

// Submission adds a Date and a Message-ID (on its host name) to a message
// without them, and the empty line a message with no header block lacks,
// changing nothing else; the log line names what was added.
func TestSubmissionRepairs(t *testing.T) {
	tests := []struct {
		name, msg string
		date, id  bool
		separator bool
		logged    string
	}{
		{"both missing", "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n", true, true, false, "repairs=\"[date message-id]\""},
		{"Date missing", "Message-ID: <m@example.com>\r\nSubject: s\r\n\r\nbody\r\n", true, false, false, "repairs=[date]"},
		{"Message-ID missing", "date: Sun, 01 Mar 2026 12:00:00 +0000\r\n\r\nbody\r\n", false, true, false, "repairs=[message-id]"},
		{"none missing", dated + "\r\nbody\r\n", false, false, false, "repairs=[]"},
		{"no header block", "Hello Bob,\r\nSubject: this is body text\r\n\r\nBcc: body text too\r\n", true, true, true,
			"repairs=\"[date message-id header-block]\""},
		{"first line continued", " indented first line\r\n\r\nbody\r\n", true, true, true, "header-block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true; c.Users = nil })
			c := f.dial()
			c.must("EHLO client.example", 250)
			c.must("MAIL FROM:<a@example.com>", 250)
			c.must("RCPT TO:<b@example.com>", 250)
			code, reply := c.data(tt.msg)
			if code != 250 {
				t.Fatalf("DATA: %d %s", code, reply)
			}
			stored, body := f.message(queuedID(t, reply))
			if want := wantRepairs(tt.date, tt.id, tt.separator); !slices.Equal(stored.Repairs, want) {
				t.Errorf("recorded repairs %q, want %q", stored.Repairs, want)
			}
			_, after := splitReceived(t, body)
			added := addedFields.FindSubmatch(after)
			if !tt.date && !tt.id {
				added = make([][]byte, 3) // the client's own Date must not be taken for one added
			}
			if (added[1] != nil) != tt.date || (added[2] != nil) != tt.id {
				t.Fatalf("stored %q: Date added %v, Message-ID added %v; want %v, %v", after, added[1] != nil, added[2] != nil, tt.date, tt.id)
			}
			rest := string(after[len(added[1])+len(added[2]):])
			want := tt.msg
			if tt.separator {
				want = "\r\n" + tt.msg
			}
			if rest != want {
				t.Errorf("stored after the added fields %q, want %q", rest, want)
			}
			m, err := mail.ReadMessage(strings.NewReader(string(after)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.separator {
				if b, _ := io.ReadAll(m.Body); string(b) != tt.msg {
					t.Errorf("body %q, want the whole message as sent %q", b, tt.msg)
				}
			}
			if !strings.Contains(f.logs.String(), tt.logged) {
				t.Errorf("log does not say %s:\n%s", tt.logged, f.logs.String())
			}
		})
	}
}

// wantRepairs lists what submission must record having added, in order.
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

// A header line over 998 octets can be neither relayed nor re-encoded: the
// message is refused with the limit named, and nothing is stored.
func TestSubmissionRefusesLongHeaderLine(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true; c.Users = nil })
	c := f.dial()
	c.must("EHLO client.example", 250)
	for _, msg := range []string{
		dated + "X-Long: " + strings.Repeat("y", 1200) + "\r\n\r\nbody\r\n",
		dated + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Part: " + strings.Repeat("y", 1200) + "\r\n\r\nx\r\n--b--\r\n",
	} {
		c.must("MAIL FROM:<a@example.com>", 250)
		c.must("RCPT TO:<b@example.com>", 250)
		code, reply := c.data(msg)
		if code != 554 || !strings.HasPrefix(reply, "5.6.0 ") || !strings.Contains(reply, "998") {
			t.Errorf("DATA: %d %s, want 554 5.6.0 naming the 998-octet limit", code, reply)
		}
	}
	// A long body line is fine: the relay re-encodes its part.
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	if code, reply := c.data(dated + "\r\n" + strings.Repeat("z", 1500) + "\r\n"); code != 250 {
		t.Errorf("long body line: %d %s", code, reply)
	}
	if n := f.stored(); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}
