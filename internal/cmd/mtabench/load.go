package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// submit sends n messages over c.conns connections, each STARTTLS then
// AUTH PLAIN then one transaction after another, and returns the latency
// of every message (MAIL to the final 250).
func submit(ctx context.Context, srv server, c *config, n int) ([]time.Duration, error) {
	var next atomic.Int64
	lat := make([]time.Duration, n)
	errs := make(chan error, c.conns)
	var wg sync.WaitGroup
	for w := range c.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- submitter(ctx, srv, c, w, n, &next, lat)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

func submitter(ctx context.Context, srv server, c *config, w, n int, next *atomic.Int64, lat []time.Duration) error {
	cl, err := smtp.DialStartTLS(srv.submitAddr(), &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		return fmt.Errorf("connect and STARTTLS: %w", err)
	}
	defer cl.Close()
	name, pass := srv.user()
	if err := cl.Auth(sasl.NewPlainClient("", name, pass)); err != nil {
		return fmt.Errorf("AUTH: %w", err)
	}
	body := messageBody(c.size)
	for ctx.Err() == nil {
		i := next.Add(1) - 1
		if i >= int64(n) {
			break
		}
		rcpt := recipient(c, int(i))
		t0 := time.Now()
		if err := cl.SendMail("bench@example.org", []string{rcpt}, strings.NewReader(body)); err != nil {
			return fmt.Errorf("message %d on connection %d: %w", i, w, err)
		}
		lat[i] = time.Since(t0)
	}
	cl.Quit()
	return ctx.Err()
}

// recipient is message i's recipient: one of 1,000 addresses at
// example.com, or with -domains at domain i mod domains.
func recipient(c *config, i int) string {
	if c.domains > 0 {
		return fmt.Sprintf("rcpt%d@%s", i, benchDomain(i%c.domains))
	}
	return fmt.Sprintf("rcpt%d@example.com", i%1000)
}

// messageBody is a plain-text message of about size bytes.
func messageBody(size int) string {
	var b strings.Builder
	b.WriteString("From: Bench <bench@example.org>\r\nTo: rcpt@example.com\r\nSubject: benchmark message\r\n" +
		"Date: Tue, 01 Dec 2026 12:00:00 +0000\r\nMessage-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n")
	line := "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.String()
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
