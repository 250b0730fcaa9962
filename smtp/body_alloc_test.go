package smtp

import (
	"bytes"
	"io"
	"testing"

	"github.com/outbox-mail/outbox/internal/crlf"
)

// TestCRLFReaderReusesItsBuffer: normalising a body allocates its
// buffers once, not once per block, so a 200 MiB message costs no more
// memory than a small one.
func TestCRLFReaderReusesItsBuffer(t *testing.T) {
	body := bytes.Repeat([]byte("a line of base64-looking text, LF only, bare\n"), 20000) // ~900 KB
	var sink [4096]byte
	allocs := testing.AllocsPerRun(5, func() {
		r := crlf.NewReader(bytes.NewReader(body))
		for {
			if _, err := r.Read(sink[:]); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs > 4 && !raceEnabled {
		t.Errorf("%.0f allocations to normalise %d bytes in 16 KiB blocks; want the reader's own few", allocs, len(body))
	}
	// And the output is still right.
	out, _ := io.ReadAll(crlf.NewReader(bytes.NewReader(body)))
	if want := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n")); !bytes.Equal(out, want) {
		t.Error("normalised output differs")
	}
}

// TestClientNormaliserReused: a Client normalises every message it sends
// with the same reader, so a message on a pooled connection allocates no
// normaliser buffers (48 KiB each, once per message before); a reset
// reader starts clean.
func TestClientNormaliserReused(t *testing.T) {
	var c Client
	first := c.normaliser(bytes.NewReader([]byte("one\nline")))
	if out, _ := io.ReadAll(first); string(out) != "one\r\nline\r\n" {
		t.Fatalf("first body normalised to %q", out)
	}
	var again *crlf.Reader
	two, src := []byte("two\r"), bytes.NewReader(nil)
	allocs := testing.AllocsPerRun(10, func() { src.Reset(two); again = c.normaliser(src) })
	if again != first || allocs > 0 && !raceEnabled {
		t.Errorf("a later message got a new reader (%v) or allocated %.0f times; want the client's own", again != first, allocs)
	}
	if out, _ := io.ReadAll(again); string(out) != "two\r\n" {
		t.Errorf("reused reader normalised %q; want it to carry nothing over", out)
	}
}
