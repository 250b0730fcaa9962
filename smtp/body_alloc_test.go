package smtp

import (
	"bytes"
	"io"
	"testing"
)

// TestCRLFReaderReusesItsBuffer: normalising a body allocates its
// buffers once, not once per block, so a 200 MiB message costs no more
// memory than a small one.
func TestCRLFReaderReusesItsBuffer(t *testing.T) {
	body := bytes.Repeat([]byte("a line of base64-looking text, LF only, bare\n"), 20000) // ~900 KB
	var sink [4096]byte
	allocs := testing.AllocsPerRun(5, func() {
		r := newCRLFReader(bytes.NewReader(body))
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
	out, _ := io.ReadAll(newCRLFReader(bytes.NewReader(body)))
	if want := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n")); !bytes.Equal(out, want) {
		t.Error("normalised output differs")
	}
}
