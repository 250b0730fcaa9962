package dkim

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/outbox-mail/outbox/internal/crlf"
)

// genMessage is a multipart message of about size bytes made up as it is
// read: a text part and a base64 "attachment", never held whole.
type genMessage struct {
	head, tail []byte
	line       []byte
	left       int64 // attachment bytes still to produce
	pending    []byte
}

func newGenMessage(size int64) *genMessage {
	head := "From: Big <big@example.com>\r\nTo: bob@example.net\r\nSubject: large\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nthe attachment follows\r\n\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	line := make([]byte, 78)
	for i := range 76 {
		line[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i*7)%64]
	}
	copy(line[76:], "\r\n")
	return &genMessage{head: []byte(head), tail: []byte("--b--\r\n"), line: line, left: size}
}

func (g *genMessage) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case len(g.pending) > 0:
			k := copy(p[n:], g.pending)
			g.pending = g.pending[k:]
			n += k
		case len(g.head) > 0:
			g.pending, g.head = g.head, nil
		case g.left > 0:
			g.pending = g.line
			g.left -= int64(len(g.line))
		case len(g.tail) > 0:
			g.pending, g.tail = g.tail, nil
		default:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
	}
	return n, nil
}

// heapPeak samples the live heap until stop is called and returns the
// largest value seen, in bytes.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

// A 200 MiB message is signed, and sent signed through Open, allocating
// the same few tens of kilobytes as a small one; go-msgauth verifies it.
func TestLargeMessageBoundedMemory(t *testing.T) {
	size := int64(200 << 20)
	if testing.Short() {
		size = 20 << 20
	}
	k := Key{Domain: "example.com", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := heapPeak()
	body, err := s.Open(func() (io.ReadCloser, error) { return io.NopCloser(newGenMessage(size)), nil })
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, body)
	if err != nil {
		t.Fatal(err)
	}
	peak := stop()
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("signed and streamed %d MiB: %d KiB allocated in all, live heap peak %d KiB (before: %d KiB)",
		n>>20, alloc>>10, peak>>10, before.HeapInuse>>10)
	if n < size {
		t.Fatalf("streamed %d bytes, want more than %d", n, size)
	}
	if alloc > 1<<20 {
		t.Errorf("signing %d MiB allocated %d KiB: the body is being kept", size>>20, alloc>>10)
	}

	// go-msgauth reads the signed stream as it is produced.
	body, err = s.Open(func() (io.ReadCloser, error) { return io.NopCloser(newGenMessage(size)), nil })
	if err != nil {
		t.Fatal(err)
	}
	vs, err := msgauth.VerifyWithOptions(body, &msgauth.VerifyOptions{LookupTXT: dns.lookupTXT})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("go-msgauth on the %d MiB message: %v %v", size>>20, err, vs)
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// message2K is a typical 2 KB message.
var message2K = func() []byte {
	var b bytes.Buffer
	b.WriteString("From: Alice <alice@example.com>\r\nTo: Bob <bob@example.net>\r\nSubject: Your order\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <1@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n")
	for b.Len() < 2048 {
		b.WriteString("Thank you for your order. It will ship in a few days, and you will get a note.\r\n")
	}
	return b.Bytes()
}()

// BenchmarkSign measures per-message cost on a 2 KB message for each key
// type (cpu-ns/op is CPU time from getrusage, steadier than wall time on
// a shared machine) and body throughput on a 10 MiB one; go-msgauth's
// Signer is measured alongside for comparison.
func BenchmarkSign(b *testing.B) {
	keys := map[string]Key{
		"rsa2048": {Domain: "example.com", Selector: "r", Signer: testRSA(b)},
		"ed25519": {Domain: "example.com", Selector: "e", Signer: testEd25519(b)},
	}
	big := make([]byte, 0, 10<<20)
	for len(big) < 10<<20 {
		big = append(big, message2K...)
	}
	big = append(append([]byte{}, message2K...), big...)
	for _, kind := range []string{"rsa2048", "ed25519"} {
		k := keys[kind]
		s, err := NewSigner(k)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range []struct {
			name string
			msg  []byte
		}{{"2KB", message2K}, {"10MiB", big}} {
			b.Run(fmt.Sprintf("%s/%s", kind, m.name), func(b *testing.B) {
				runSign(b, m.msg, func(r io.Reader) error { _, err := s.Sign(r); return err })
			})
			b.Run(fmt.Sprintf("go-msgauth/%s/%s", kind, m.name), func(b *testing.B) {
				opts := &msgauth.SignOptions{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer,
					HeaderCanonicalization: msgauth.CanonicalizationRelaxed, BodyCanonicalization: msgauth.CanonicalizationRelaxed,
					HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "From"}}
				runSign(b, m.msg, func(r io.Reader) error {
					gs, err := msgauth.NewSigner(opts)
					if err != nil {
						return err
					}
					if _, err := io.Copy(gs, r); err != nil {
						return err
					}
					return gs.Close()
				})
			})
		}
	}
}

func runSign(b *testing.B, msg []byte, sign func(io.Reader) error) {
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if err := sign(bytes.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// repeatReader yields its pattern over and over, n bytes in all.
type repeatReader struct {
	pattern []byte
	n       int64
	off     int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	for i := range p {
		p[i] = r.pattern[r.off]
		r.off = (r.off + 1) % len(r.pattern)
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// A body made of empty lines (or of white space only) is hashed in
// constant memory too: the canonicaliser counts the lines it may have to
// drop instead of keeping them. go-msgauth's Signer keeps them; its peak
// is logged for comparison.
func TestBlankBodyBoundedMemory(t *testing.T) {
	const size = 32 << 20
	k := Key{Domain: "example.com", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k)
	msg := func() io.Reader {
		return io.MultiReader(bytes.NewReader([]byte("From: a@example.com\r\nSubject: blank\r\n\r\nstart\r\n")),
			&repeatReader{pattern: []byte(" \t\r\n\r\n"), n: size}, bytes.NewReader([]byte("end\r\n")))
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sig, err := s.Sign(msg())
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 1<<20 {
		t.Errorf("signing %d MiB of empty lines allocated %d KiB", size>>20, alloc>>10)
	}
	signed, err := io.ReadAll(io.MultiReader(bytes.NewReader(sig), crlf.NewReader(msg())))
	if err != nil {
		t.Fatal(err)
	}
	if vs := verifyGo(t, dns, signed); len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("go-msgauth: %v", vs)
	}

	gs, err := msgauth.NewSigner(&msgauth.SignOptions{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer,
		HeaderCanonicalization: msgauth.CanonicalizationRelaxed, BodyCanonicalization: msgauth.CanonicalizationRelaxed})
	if err != nil {
		t.Fatal(err)
	}
	stop := heapPeak()
	io.Copy(gs, msg())
	gs.Close()
	t.Logf("%d MiB of empty lines: this signer allocated %d KiB; go-msgauth's live heap peaked at %d MiB",
		size>>20, alloc>>10, stop()>>20)
}
