package headerblock

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
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
	hdr, _, err := Read(br, 100)
	rest, _ := io.ReadAll(br)
	if string(hdr) != "A: 1\r\n b\r\n\r\n" || err != nil || string(rest) != "body\r\n" {
		t.Errorf("got %q, %v, rest %q", hdr, err, rest)
	}
	hdr, _, err = Read(bufio.NewReader(strings.NewReader("A: 1\r\nB: 2")), 100)
	if string(hdr) != "A: 1\r\nB: 2" || err != nil {
		t.Errorf("no body: %q, %v", hdr, err)
	}
	if _, _, err = Read(bufio.NewReaderSize(strings.NewReader("A: "+strings.Repeat("x", 200)+"\r\n\r\n"), 16), 100); err != ErrTooLarge {
		t.Errorf("long block: %v, want ErrTooLarge", err)
	}
}

// What a header block says, and where it ends: a first line that cannot
// be a header field means there is no header block at all.
func TestReadInfo(t *testing.T) {
	tests := []struct {
		in, hdr string
		want    Info
	}{
		{"Subject: hi\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\nbody", "Subject: hi\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\n",
			Info{Subject: " hi", Date: true, MessageID: true}},
		{"SUBJECT : one\r\n two\r\n\tthree\r\nsubject: second\r\n\r\n", "SUBJECT : one\r\n two\r\n\tthree\r\nsubject: second\r\n\r\n",
			Info{Subject: " one two\tthree"}},
		{"date: x\nmessage-id: y\n\nbody\n", "date: x\nmessage-id: y\n\n", Info{Date: true, MessageID: true}},
		{"\r\nbody", "\r\n", Info{}},
		{"Hello, this is the body\r\nSubject: not a header\r\n\r\n", "", Info{NoHeader: true}},
		{" continued\r\n\r\n", "", Info{NoHeader: true}},
		{"From sender@example.com Mon Jan 1\r\nSubject: x\r\n\r\n", "", Info{NoHeader: true}},
		{"Bad name\x80: v\r\n\r\n", "", Info{NoHeader: true}},
		{"no colon at all and no line end", "", Info{NoHeader: true}},
		{"", "", Info{}},
		{"Subject: " + strings.Repeat("s", 5000) + "\r\n\r\n", "Subject: " + strings.Repeat("s", 5000) + "\r\n\r\n",
			Info{Subject: " " + strings.Repeat("s", maxSubject-1)}},
	}
	for _, tt := range tests {
		for _, size := range []int{16, 4096} {
			br := bufio.NewReaderSize(strings.NewReader(tt.in), size)
			hdr, info, err := Read(br, 1<<20)
			rest, _ := io.ReadAll(br)
			if err != nil || string(hdr) != tt.hdr || info != tt.want || string(hdr)+string(rest) != tt.in {
				t.Errorf("%.30q (buffer %d): %q, %+v, %v; want %q, %+v", tt.in, size, hdr, info, err, tt.hdr, tt.want)
			}
		}
	}
}

// Spool keeps a large header block out of memory and gives it back
// whole, with the Subject found past any size.
func TestSpool(t *testing.T) {
	filler := strings.Repeat("X-Filler: "+strings.Repeat("x", 900)+"\r\n", 100) // 90 KB
	for _, mem := range []int{64 << 10, 1 << 20} {
		in := filler + "Subject: late\r\n\r\nbody\r\n"
		br := bufio.NewReaderSize(strings.NewReader(in), 4096)
		b, err := Spool(br, mem)
		if err != nil {
			t.Fatal(err)
		}
		if (b.file != nil) != (mem < len(in)) || b.mem.Len() > mem {
			t.Errorf("mem %d: %d bytes in memory, file %v", mem, b.mem.Len(), b.file != nil)
		}
		got, _ := io.ReadAll(b.Reader())
		rest, _ := io.ReadAll(br)
		if string(got) != filler+"Subject: late\r\n\r\n" || string(rest) != "body\r\n" || b.Subject != " late" {
			t.Errorf("mem %d: block of %d bytes, rest %q, subject %q", mem, len(got), rest, b.Subject)
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestRepair(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", 3600))
	r := Info{}.Repair("mx.example.com", now)
	if !strings.HasPrefix(r.Fields, "Date: Sun, 01 Mar 2026 12:00:00 +0100\r\nMessage-ID: <") ||
		!strings.HasSuffix(r.Fields, "@mx.example.com>\r\n") || r.Separator != "" ||
		strings.Join(r.Added, ",") != "date,message-id" {
		t.Errorf("repair of a header without Date and Message-ID: %+v", r)
	}
	if r := (Info{Date: true, MessageID: true}).Repair("h", now); r.Fields != "" || r.Separator != "" || r.Added != nil {
		t.Errorf("repair of a whole header: %+v", r)
	}
	r = Info{NoHeader: true, Date: true, MessageID: true}.Repair("h", now)
	got, _ := io.ReadAll(r.Apply(strings.NewReader(""), strings.NewReader("first line\r\n")))
	if string(got) != "\r\nfirst line\r\n" || strings.Join(r.Added, ",") != "header-block" {
		t.Errorf("no header block: %q, %v", got, r.Added)
	}
	if r := (Info{}).Repair("bad host\r\nX: y", now); !strings.Contains(r.Fields, "@badhostXy>") {
		t.Errorf("host name not cleaned: %q", r.Fields)
	}
	if r := (Info{}).Repair("", now); !strings.Contains(r.Fields, "@localhost>") {
		t.Errorf("empty host name: %q", r.Fields)
	}
}
