package mime7

import (
	"io"
	"runtime"
	"strings"
	"testing"
)

// textStream yields a message with an n-byte body of repeated lines,
// without holding it: 8-bit text, or 7-bit text (which Downgrade must
// hold, and spill, until the end shows it can pass as it is).
type textStream struct {
	head, line string
	n, off     int
}

func (s *textStream) Read(p []byte) (int, error) {
	if s.head != "" {
		k := copy(p, s.head)
		s.head = s.head[k:]
		return k, nil
	}
	if s.off >= s.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && s.off < s.n {
		c := copy(p[k:min(len(p), k+s.n-s.off)], s.line[s.off%len(s.line):])
		k += c
		s.off += c
	}
	return k, nil
}

func streamMsg(n int, line string) *textStream {
	return &textStream{head: "From: a@example.com\r\nSubject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		line: line, n: n}
}

// TestDowngradeConstantMemory checks that memory does not grow with the
// message: a 64 MiB body allocates about what a 1 MiB one does.
func TestDowngradeConstantMemory(t *testing.T) {
	for _, line := range []string{
		strings.Repeat("Grüße aus Köln ", 4) + "\r\n",  // re-encoded as it streams
		strings.Repeat("only ascii here ", 4) + "\r\n", // held (spilled to a file) to the end, then passed on
	} {
		alloc := func(n int) uint64 {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r, err := Downgrade(streamMsg(n, line))
			if err != nil {
				t.Fatal(err)
			}
			w, err := io.Copy(io.Discard, r)
			runtime.ReadMemStats(&after)
			if err != nil || w < int64(n) {
				t.Fatalf("Downgrade gave %d bytes: %v", w, err)
			}
			return after.TotalAlloc - before.TotalAlloc
		}
		small, large := alloc(1<<20), alloc(64<<20)
		t.Logf("%.20q: allocated %d bytes for 1 MiB, %d bytes for 64 MiB", line, small, large)
		if large > 2*small+512<<10 {
			t.Errorf("Downgrade grows with the message: %d bytes for 1 MiB, %d for 64 MiB", small, large)
		}
	}
}

func BenchmarkDowngrade(b *testing.B) {
	for _, c := range []struct{ name, line string }{
		{"8bit", strings.Repeat("Grüße aus Köln ", 4) + "\r\n"},
		{"7bit", strings.Repeat("only ascii here ", 4) + "\r\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			const n = 16 << 20
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				r, err := Downgrade(streamMsg(n, c.line))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheck is what the submission path pays per small message.
func BenchmarkCheck(b *testing.B) {
	msg := "Received: from x\r\nDate: Sun, 01 Mar 2026 12:00:00 +0000\r\nFrom: a@example.com\r\nTo: b@example.com\r\n" +
		"Subject: hello\r\n\r\n" + strings.Repeat("a line of text in the body of a small message\r\n", 40)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, Check(strings.NewReader(msg))); err != nil {
			b.Fatal(err)
		}
	}
}
