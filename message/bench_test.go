package message

import (
	"io"
	"mime"
	"runtime"
	"testing"
)

// patternReader yields n deterministic, incompressible-looking bytes
// without holding them: the attachment of the benchmarks.
type patternReader struct {
	n, off int64
	x      uint64
}

func newPatternReader(n int64) *patternReader { return &patternReader{n: n, x: 0x9e3779b97f4a7c15} }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		r.x ^= r.x << 13
		r.x ^= r.x >> 7
		r.x ^= r.x << 17
		p[i] = byte(r.x)
	}
	r.off += int64(len(p))
	return len(p), nil
}

func bigMessage(size int64) *Message {
	return &Message{
		From:        Address{"Sender", "sender@example.com"},
		To:          []Address{{"Rcpt", "rcpt@example.net"}},
		Subject:     "Big attachment",
		Text:        "See attached.",
		HTML:        "<p>See attached.</p>",
		Attachments: []Attachment{{Filename: "big.bin", Content: newPatternReader(size)}},
	}
}

func BenchmarkCompose(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int64
	}{{"10MiB", 10 << 20}, {"1GiB", 1 << 30}} {
		b.Run(size.name, func(b *testing.B) {
			// Load the MIME type table once, outside the measurement: it
			// is a one-time cost of the process, not of a message.
			mime.TypeByExtension(".bin")
			b.SetBytes(size.n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bigMessage(size.n).WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestComposeConstantMemory checks the streaming promise: composing a
// 64 MiB attachment allocates about what composing a 1 MiB one does.
func TestComposeConstantMemory(t *testing.T) {
	alloc := func(n int64) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w, err := bigMessage(n).WriteTo(io.Discard)
		runtime.ReadMemStats(&after)
		if err != nil || w < n*4/3 {
			t.Fatalf("WriteTo wrote %d bytes: %v", w, err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := alloc(1<<20), alloc(64<<20)
	t.Logf("allocated %d bytes for 1 MiB, %d bytes for 64 MiB", small, large)
	if large > 1<<20 || large > 2*small+256<<10 {
		t.Errorf("composing grows with the attachment: %d bytes for 1 MiB, %d for 64 MiB", small, large)
	}
}
