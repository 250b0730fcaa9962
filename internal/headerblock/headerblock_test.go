package headerblock

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

var stripCases = []struct{ in, want string }{
	{"", ""},
	{"\r\n", "\r\n"},
	{"To: a\r\nBcc: b\r\n\r\nBcc: body\r\n", "To: a\r\n\r\nBcc: body\r\n"},
	{"Bcc: b,\r\n c\r\n\td\r\nTo: a\r\n\r\nx", "To: a\r\n\r\nx"},
	{"BCC:b\nresent-bcc :\n c\nRESENT-BCC\t: d\nTo: a\n\n b\n", "To: a\n\n b\n"},
	{"Bcc-X: keep\r\nX-Bcc: keep\r\nBccc: keep\r\n", "Bcc-X: keep\r\nX-Bcc: keep\r\nBccc: keep\r\n"},
	{"To: a\r\nBcc: b", "To: a\r\n"},
	{"Bcc: b\r\n\r\r\nBcc: body\r\n", "\r\r\nBcc: body\r\n"},
	{"Bcc: b\r\n\r\n Bcc: c\r\n", "\r\n Bcc: c\r\n"},
	{"no colon line\r\nBcc: b\r\n", "no colon line\r\n"},
	{"To: " + strings.Repeat("y", 5000) + "\r\nBcc: " + strings.Repeat("z", 5000) + "\r\n\r\nend",
		"To: " + strings.Repeat("y", 5000) + "\r\n\r\nend"},
	{"Bcc" + strings.Repeat(" ", 3000) + ": b\r\nTo: a\r\n", "To: a\r\n"},
	{"X" + strings.Repeat("-", 3000) + ": v\r\nBcc: b\r\n", "X" + strings.Repeat("-", 3000) + ": v\r\n"},
}

// Bcc and Resent-Bcc fields go, with their continuation lines, whatever
// the sizes of the reads on either side; all else passes byte for byte.
func TestStripBcc(t *testing.T) {
	for _, tc := range stripCases {
		for name, r := range map[string]func() io.Reader{
			"plain":   func() io.Reader { return strings.NewReader(tc.in) },
			"onebyte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(tc.in)) },
			"bufio16": func() io.Reader { return bufio.NewReaderSize(strings.NewReader(tc.in), 16) },
		} {
			got, err := io.ReadAll(StripBcc(r()))
			if err != nil || string(got) != tc.want {
				t.Errorf("%s %.40q: got %.60q, %v; want %.60q", name, tc.in, got, err, tc.want)
			}
			var small bytes.Buffer
			sr := StripBcc(r())
			p := make([]byte, 3)
			for {
				n, err := sr.Read(p)
				small.Write(p[:n])
				if err != nil {
					break
				}
			}
			if small.String() != tc.want {
				t.Errorf("%s, 3-byte reads %.40q: got %.60q", name, tc.in, small.String())
			}
		}
	}
}

// The source's error is returned, and returned again: a broken stream is
// never taken for the end of the message.
func TestStripBccKeepsError(t *testing.T) {
	boom := errors.New("boom")
	for _, in := range []string{"To: a\r\nBc", "To: a\r\n\r\nbody", ""} {
		sr := StripBcc(io.MultiReader(strings.NewReader(in), iotest.ErrReader(boom)))
		if _, err := io.ReadAll(sr); err != boom {
			t.Errorf("%q: err %v, want boom", in, err)
		}
		if _, err := sr.Read(make([]byte, 10)); err != boom {
			t.Errorf("%q: second read err %v, want boom", in, err)
		}
	}
}

// Read returns the header block with its end, leaving the body in the
// reader, and refuses a block longer than its limit.
func TestRead(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("A: 1\r\n b\r\n\r\nbody\r\n"), 16)
	hdr, err := Read(br, 100)
	rest, _ := io.ReadAll(br)
	if string(hdr) != "A: 1\r\n b\r\n\r\n" || err != nil || string(rest) != "body\r\n" {
		t.Errorf("got %q, %v, rest %q", hdr, err, rest)
	}
	hdr, err = Read(bufio.NewReader(strings.NewReader("A: 1\r\nB: 2")), 100)
	if string(hdr) != "A: 1\r\nB: 2" || err != nil {
		t.Errorf("no body: %q, %v", hdr, err)
	}
	if _, err = Read(bufio.NewReaderSize(strings.NewReader("A: "+strings.Repeat("x", 200)+"\r\n\r\n"), 16), 100); err != ErrTooLarge {
		t.Errorf("long block: %v, want ErrTooLarge", err)
	}
}
