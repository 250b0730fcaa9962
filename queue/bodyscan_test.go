package queue

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestBodyScanLines: a line is long when it has more than 998 octets
// besides its CRLF or LF, wherever the reads split it, the last line too.
func TestBodyScanLines(t *testing.T) {
	for _, tc := range []struct {
		body string
		long bool
	}{
		{strings.Repeat("a", 998) + "\r\nb\r\n", false},
		{strings.Repeat("a", 999) + "\r\nb\r\n", true},
		{strings.Repeat("a", 998) + "\nb\n", false},
		{strings.Repeat("a", 999) + "\n", true},
		{"x\r\n" + strings.Repeat("a", 998), false},
		{"x\r\n" + strings.Repeat("a", 999), true},
		{strings.Repeat("a", 998) + "\r", false},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.body)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			s := &bodyScan{r: r}
			io.Copy(io.Discard, s)
			if s.longLine != tc.long {
				t.Errorf("%q (one byte %v): long %v, want %v", tc.body[len(tc.body)-6:], oneByte, s.longLine, tc.long)
			}
		}
	}
}
