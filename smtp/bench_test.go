package smtp

import (
	"context"
	"io"
	"net"
	netsmtp "net/smtp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start: on a
// shared machine it is steadier than wall time. It counts the test
// server's work too (it runs in the same process).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// delayProxy forwards loopback TCP to target, delaying every byte by d in
// each direction (latency, not a bandwidth limit).
func delayProxy(tb testing.TB, target string, d time.Duration) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); delayCopy(out, in, d) }()
			go func() { defer wg.Done(); delayCopy(in, out, d) }()
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

type stamped struct {
	at   time.Time
	data []byte
}

// delayCopy copies src to dst, releasing each read d after it arrived.
func delayCopy(dst, src net.Conn, d time.Duration) {
	ch := make(chan stamped, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- stamped{time.Now().Add(d), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for s := range ch {
		time.Sleep(time.Until(s.at))
		if _, err := dst.Write(s.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range ch {
	}
}

const benchMsg = "From: a@x.test\r\nTo: b@y.test\r\nSubject: bench\r\n\r\nHello, this is a small message.\r\n"

func BenchmarkDelayed5ms(b *testing.B) {
	ts := startServer(b, nil, nil, nil)
	addr := delayProxy(b, ts.Addr, 5*time.Millisecond)
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}
	b.Run("outbox", func(b *testing.B) {
		c, err := Dial(context.Background(), addr, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ResetTimer()
		cpu := cpuTime()
		for i := 0; i < b.N; i++ {
			if _, err := c.Send(context.Background(), env, strings.NewReader(benchMsg)); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("net-smtp", func(b *testing.B) {
		c, err := netsmtp.Dial(addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("localhost"); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// MAIL, RCPT, DATA, final dot, RSET: the usual reuse loop.
			if err := c.Mail("a@x.test"); err != nil {
				b.Fatal(err)
			}
			if err := c.Rcpt("b@y.test"); err != nil {
				b.Fatal(err)
			}
			w, err := c.Data()
			if err != nil {
				b.Fatal(err)
			}
			io.WriteString(w, benchMsg)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			if err := c.Reset(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

func BenchmarkPool8(b *testing.B) {
	ts := startServer(b, nil, nil, nil)
	p := NewPool(&PoolOptions{Addr: ts.Addr, MaxConns: 8, MaxMessages: 1 << 30})
	defer p.Close()
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}
	b.SetParallelism(8) // with GOMAXPROCS=2: 16 goroutines for 8 connections
	b.ResetTimer()
	cpu := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Send(context.Background(), env, strings.NewReader(benchMsg), nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
