package message

import (
	"bytes"
	"io"
	"mime"
	"strings"
	"testing"
)

// onlyReader hides every method but Read, as a pipe or socket would.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestSniffedTypes(t *testing.T) {
	latin1 := []byte("Gr\xfc\xdfe aus K\xf6ln\r\n")
	bigUTF8 := strings.Repeat("ascii text for a while ", 400) + "then Grüße\r\n" // ends past the 4 KiB peek
	bigLatin1 := strings.Repeat("ascii text for a while ", 400) + string(latin1)
	tests := []struct {
		name    string
		content io.Reader
		want    string
	}{
		{"empty.dat", strings.NewReader(""), "application/octet-stream"},
		{"empty", strings.NewReader(""), "application/octet-stream"},
		{"data.dat", strings.NewReader("plain words"), "application/octet-stream"},
		{"empty.txt", strings.NewReader(""), "text/plain"},
		{"notes.txt", strings.NewReader("Grüße\r\n"), "text/plain; charset=utf-8"},
		{"NOTES.TXT", strings.NewReader("hello"), "text/plain; charset=utf-8"},
		{"latin1.txt", bytes.NewReader(latin1), "text/plain"},
		{"latin1", bytes.NewReader(latin1), "application/octet-stream"},
		{"utf8-noext", strings.NewReader("Grüße\r\n"), "text/plain; charset=utf-8"},
		{"big.csv", strings.NewReader(bigUTF8), "text/csv; charset=utf-8"}, // seekable: read whole
		{"big-stream.csv", onlyReader{strings.NewReader(bigUTF8)}, "text/csv"},
		{"big-latin1.csv", strings.NewReader(bigLatin1), "text/csv"},
		{"big-latin1-stream.txt", onlyReader{strings.NewReader(bigLatin1)}, "text/plain"},
		{"binary.txt", strings.NewReader("a\x00b"), "text/plain"},
		{"page.html", strings.NewReader("<html><body>é</body></html>"), "text/html; charset=utf-8"},
		{"page", strings.NewReader("<html><body>hi</body></html>"), "text/plain; charset=utf-8"},
		{"photo", bytes.NewReader(png), "image/png"},
		{"photo.jpg", bytes.NewReader(png), "image/jpeg"}, // the name wins over the content
		{"doc.PDF", strings.NewReader("x"), "application/pdf"},
		{"report", bytes.NewReader(pdf), "application/pdf"},
		{"archive.unknownext", bytes.NewReader([]byte{0, 1, 2, 3}), "application/octet-stream"},
		{"data.json", strings.NewReader(`{"a":"é"}`), "application/json"},
	}
	for _, tt := range tests {
		var data []byte
		if s, ok := tt.content.(io.ReadSeeker); ok {
			data, _ = io.ReadAll(s)
			s.Seek(0, io.SeekStart)
		} else {
			data, _ = io.ReadAll(tt.content)
			tt.content = onlyReader{bytes.NewReader(data)}
		}
		m := validMessage()
		m.Attachments = []Attachment{{Filename: tt.name, Content: tt.content}}
		raw := compose(t, m)
		p := parseStd(t, raw)
		got := p.leaves[1]
		ct := partHeader(t, raw, 1, "Content-Type")
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("%s: Content-Type %q: %v", tt.name, ct, err)
		}
		want, wparams, _ := mime.ParseMediaType(tt.want)
		if mt != want || params["charset"] != wparams["charset"] {
			t.Errorf("%s: Content-Type %q, want %q", tt.name, ct, tt.want)
		}
		if got.data != string(data) {
			t.Errorf("%s: content differs after sniffing: %d bytes, want %d", tt.name, len(got.data), len(data))
		}
	}
}

// partHeader returns the unfolded field name of the n-th leaf of raw.
func partHeader(t *testing.T, raw []byte, n int, name string) string {
	t.Helper()
	parts := strings.Split(string(raw), "\r\n--=_outbox_")
	if n+1 >= len(parts) {
		t.Fatalf("no part %d", n)
	}
	part := parts[n+1]
	h := part[:strings.Index(part, "\r\n\r\n")]
	for _, l := range strings.Split(strings.ReplaceAll(h, "\r\n ", " "), "\r\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return v
		}
	}
	t.Fatalf("part %d has no %s", n, name)
	return ""
}
