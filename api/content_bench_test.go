package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

// BenchmarkContentLargeAttachment reads the content of a message with
// one large attachment. Besides time and allocations it reports the peak
// of the heap in use while the answers are made (peak-heap-MiB, sampled
// every millisecond), which stays flat as the attachment grows: parts
// stream through SHA-256, they are never held.
func BenchmarkContentLargeAttachment(b *testing.B) {
	for _, mib := range []int{1, 8, 20} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			st, err := sqlite.Open(filepath.Join(b.TempDir(), "outbox.db"), sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ob, _ := outbox.New(outbox.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
			h, err := New(Config{Client: ob, Logger: slog.New(slog.DiscardHandler), MaxMessageSize: 32 << 20})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			resp, err := http.Post(srv.URL+"/v1/messages/raw", "message/rfc822", bytes.NewReader(largeMessage(mib<<20)))
			if err != nil {
				b.Fatal(err)
			}
			var a accepted
			json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			url := srv.URL + "/v1/messages/" + a.ID + "/content"
			runtime.GC()
			var peak atomic.Uint64
			stop := make(chan struct{})
			go func() {
				var ms runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}()
			b.ResetTimer()
			for range b.N {
				resp, err := http.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				var c Content
				err = json.NewDecoder(resp.Body).Decode(&c)
				resp.Body.Close()
				if err != nil || len(c.Attachments) != 1 || c.Attachments[0].Size != int64(mib<<20) {
					b.Fatalf("content: %d, %v, %+v", resp.StatusCode, err, c.Attachments)
				}
			}
			b.StopTimer()
			close(stop)
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		})
	}
}

// largeMessage is a message with a text body and one attachment of n
// bytes, in base64.
func largeMessage(n int) []byte {
	var m strings.Builder
	m.WriteString("From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee https://x.test/\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("0123456789abcdef"), n/16))
	for len(enc) > 76 {
		m.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	m.WriteString(enc + "\r\n--B--\r\n")
	return []byte(m.String())
}
