package main_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

// peakRSS is a process's peak resident set (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// writeLargeMessage writes a MIME message of about size bytes, its bulk
// one base64 attachment of random bytes, without holding it in memory.
func writeLargeMessage(w io.Writer, size int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "From: app@example.test\r\nTo: ann@example.test\r\nSubject: large\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n"+
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"+
		"Content-Disposition: attachment; filename=big.bin\r\n\r\n")
	rng := rand.NewChaCha8([32]byte{1})
	raw := make([]byte, 57) // one 76-character line
	line := make([]byte, 78)
	for n := int64(0); n < size; n += 78 {
		rng.Read(raw)
		base64.StdEncoding.Encode(line, raw)
		line[76], line[77] = '\r', '\n'
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	fmt.Fprintf(bw, "--B--\r\n")
	return bw.Flush()
}

// BenchmarkLargeSubmissionRSS submits one 200 MiB message over SMTP
// (STARTTLS, AUTH) to the built daemon, which relays it to a loopback
// sink, and reports the daemon's peak RSS. GOGC and GOMEMLIMIT in the
// environment reach the daemon, to compare settings:
//
//	go test ./cmd/outbox -run XXX -bench LargeSubmissionRSS -benchtime 1x
func BenchmarkLargeSubmissionRSS(b *testing.B) {
	const size = 200 << 20
	for range b.N {
		sink := startSinkB(b)
		d := startDaemon(b, b.TempDir(), "--relay", "smtp://"+sink.Addr()+"?starttls=off", "--max-message-size", "300MiB")
		idle, _ := peakRSS(d.cmd.Process.Pid)
		stopSampling := sampleRSS(d.cmd.Process.Pid)
		start := time.Now()
		c, err := smtp.Dial(d.smtpAddr)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.StartTLS(insecureTLS); err != nil {
			b.Fatal(err)
		}
		if err := c.Auth(smtp.PlainAuth("", smtpUser, smtpPass, "127.0.0.1")); err != nil {
			b.Fatal(err)
		}
		if err := c.Mail("app@example.test"); err != nil {
			b.Fatal(err)
		}
		if err := c.Rcpt("ann@example.test"); err != nil {
			b.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			b.Fatal(err)
		}
		if err := writeLargeMessage(w, size); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatalf("final dot: %v", err)
		}
		c.Quit()
		var list struct{ Messages []struct{ ID string } }
		if code := d.api("GET", "/v1/messages", "", nil, &list); code != 200 || len(list.Messages) != 1 {
			b.Fatalf("list: HTTP %d, %d messages", code, len(list.Messages))
		}
		d.waitStatusFor(list.Messages[0].ID, queue.StatusDelivered, 2*time.Minute)
		elapsed := time.Since(start)
		peak, err := peakRSS(d.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		if got := sink.Received(); len(got) != 1 || len(got[0].Data) < size {
			b.Fatalf("the sink got %d messages", len(got))
		}
		parts := stopSampling()
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(idle)/(1<<20), "idle-RSS-MiB")
		for _, k := range []string{"RssAnon", "RssFile", "RssShmem"} {
			b.ReportMetric(float64(parts[k])/(1<<20), "peak-"+k+"-MiB")
		}
		b.ReportMetric(elapsed.Seconds(), "s/200MiB")
		d.stop()
	}
}

func startSinkB(b *testing.B) *smtpsink.Sink {
	s, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Stop() })
	return s
}

// waitStatusFor is waitStatus with a longer bound, for large messages.
func (d *daemonProc) waitStatusFor(id string, want queue.Status, timeout time.Duration) {
	d.t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var m struct{ Status queue.Status }
		if code := d.api("GET", "/v1/messages/"+id, "", nil, &m); code == 200 && m.Status == want {
			return
		}
	}
	d.t.Fatalf("message %s not %s within %v\n%s", id, want, timeout, d.logs)
}

// sampleRSS polls a process's resident set by kind (anonymous, file,
// shared memory) until the returned function is called, which returns
// the largest of each seen.
func sampleRSS(pid int) func() map[string]int64 {
	peaks := map[string]int64{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					k, v, ok := strings.Cut(line, ":")
					if !ok || !strings.HasPrefix(k, "Rss") {
						continue
					}
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					peaks[k] = max(peaks[k], kb<<10)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() map[string]int64 { close(stop); <-done; return peaks }
}

// BenchmarkConcurrentJSONRSS posts 16 JSON messages of 25 MB each (an
// 18 MiB attachment, base64) at once to the built daemon's API and
// reports its peak RSS and how the posts were answered: the API decodes
// attachments as a stream and admits requests by bytes in flight, so
// the peak stays far below 16 × 25 MB.
//
//	go test ./cmd/outbox -run XXX -bench ConcurrentJSONRSS -benchtime 1x
func BenchmarkConcurrentJSONRSS(b *testing.B) {
	const posts, attachment = 16, 18 << 20
	raw := make([]byte, attachment)
	rand.NewChaCha8([32]byte{2}).Read(raw)
	body := []byte(`{"from": "app@example.test", "to": ["ann@example.test"], "subject": "large", "text": "see the attachment",
		"attachments": [{"filename": "big.bin", "content_type": "application/octet-stream", "content": "` +
		base64.StdEncoding.EncodeToString(raw) + `"}]}`)
	for range b.N {
		d := startDaemon(b, b.TempDir())
		stopSampling := sampleRSS(d.cmd.Process.Pid)
		start := time.Now()
		codes := make(chan int, posts)
		for range posts {
			go func() { codes <- d.api("POST", "/v1/messages", "application/json", bytes.NewReader(body), nil) }()
		}
		answered := map[int]int{}
		for range posts {
			answered[<-codes]++
		}
		elapsed := time.Since(start)
		peak, err := peakRSS(d.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		stopSampling()
		if answered[202]+answered[503] != posts {
			b.Fatalf("answers %v; want every post 202, or 503 when the budget is full", answered)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(answered[202]), "accepted")
		b.ReportMetric(float64(answered[503]), "refused-503")
		b.ReportMetric(elapsed.Seconds(), "s/16posts")
		d.stop()
	}
}
