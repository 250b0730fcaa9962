package bounce

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// bigReport is a DSN that returns a message with an attachment of about
// size bytes, made up as it is read.
func bigReport(size int64) io.Reader {
	head := "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n" +
		"--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n" +
		"Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.3.4\r\n\r\n" +
		"--R\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <big@example.com>\r\nFrom: a@example.com\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	line := strings.Repeat("QUJD", 19) + "\r\n"
	body := io.LimitReader(&repeat{s: line}, size)
	return io.MultiReader(strings.NewReader(head), body, strings.NewReader("\r\n--R--\r\n"))
}

type repeat struct {
	s   string
	off int
}

func (r *repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.s[r.off]
		r.off = (r.off + 1) % len(r.s)
	}
	return len(p), nil
}

// A 10 MB report is refused under the default limit after reading just
// past it, and read whole under a larger one — in both cases allocating
// far less than its size: the returned message streams past.
func TestTenMegabyteReport(t *testing.T) {
	const size = 10 << 20
	measure := func(f func()) uint64 {
		runtime.GC()
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}
	var err error
	alloc := measure(func() { _, err = Parse(bigReport(size), 0) })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 2097152 bytes") {
		t.Errorf("10 MB under the default limit: %v", err)
	}
	if alloc > 512<<10 {
		t.Errorf("refusing 10 MB allocated %d KiB", alloc>>10)
	}

	var rep *Report
	alloc = measure(func() { rep, err = Parse(bigReport(size), 64<<20) })
	if err != nil || len(rep.Recipients) != 1 || rep.Recipients[0].Status != "5.3.4" || rep.Original.MessageID != "<big@example.com>" {
		t.Fatalf("10 MB under a 64 MiB limit: %+v %v", rep, err)
	}
	t.Logf("a 10 MiB report: %d KiB allocated", alloc>>10)
	if alloc > 512<<10 {
		t.Errorf("parsing 10 MB allocated %d KiB: the report is being kept", alloc>>10)
	}

	// Exactly at the limit is accepted; one byte over is not.
	data, _ := os.ReadFile(filepath.Join("testdata", "dsn-failed.eml"))
	if _, err := Parse(bytes.NewReader(data), int64(len(data))); err != nil {
		t.Errorf("a report of exactly the limit: %v", err)
	}
	if _, err := Parse(bytes.NewReader(data), int64(len(data)-1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a report one byte over the limit: %v", err)
	}
}

// A source that fails is reported as such, not as a malformed report.
func TestSourceError(t *testing.T) {
	boom := errors.New("connection reset")
	data, _ := os.ReadFile(filepath.Join("testdata", "dsn-failed.eml"))
	_, err := Parse(io.MultiReader(bytes.NewReader(data[:600]), iotest.ErrReader(boom)), 0)
	if !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Errorf("Parse over a failing source: %v", err)
	}
}

// FuzzParse: arbitrary input gives a report or one of the three errors,
// never a panic, and whatever is accepted has the part its kind needs.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil && !strings.Contains(file, "fuzz") {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Parse(bytes.NewReader(data), 64<<10)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotReport) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse: unexpected error %v", err)
			}
			return
		}
		switch rep.Kind {
		case KindDSN, KindNonStandard:
			if len(rep.Recipients) == 0 || len(rep.Recipients) > maxRecipients {
				t.Fatalf("%s with %d recipients", rep.Kind, len(rep.Recipients))
			}
		case KindFeedback:
			if rep.Feedback == nil || rep.Feedback.Type == "" {
				t.Fatal("a feedback report without its Feedback-Type")
			}
		default:
			t.Fatalf("kind %q", rep.Kind)
		}
	})
}

// cpuTime is the CPU time this process has used, user and system: a
// steadier measure than wall time on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkParse: throughput on a typical DSN (the hand-written one with
// the original's header) and on a 1 MiB one returning a whole message.
func BenchmarkParse(b *testing.B) {
	small, _ := os.ReadFile(filepath.Join("testdata", "dsn-failed.eml"))
	big, _ := io.ReadAll(bigReport(1 << 20))
	for _, c := range []struct {
		name string
		data []byte
	}{{"typical", small}, {"1MiB", big}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if _, err := Parse(bytes.NewReader(c.data), 2<<20); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
