package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/queuetest"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

// benchMessages is how many messages BenchmarkPages keeps in the store.
const benchMessages = 100_000

// benchDB returns a SQLite file holding benchMessages messages, a fifth of
// them delivered or failed with an attempt each. It is built once and kept
// in os.TempDir(), keyed by the fill's version, since filling takes a while.
func benchDB(b *testing.B) string {
	path := filepath.Join(os.TempDir(), "outbox-web-bench-v3", "outbox.db")
	if _, err := os.Stat(path + ".done"); err == nil {
		return path
	}
	os.RemoveAll(filepath.Dir(path))
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	const producers = 64
	for p := range producers {
		wg.Go(func() {
			for i := p; i < benchMessages; i += producers {
				_, err := st.Enqueue(ctx, queue.NewMessage{From: fmt.Sprintf("app%d@example.com", i%7),
					Recipients: []string{fmt.Sprintf("user%d@example.org", i)}, Subject: fmt.Sprintf("Order %d", i),
					Body: bytes.NewReader(queuetest.MIMEBody(i))})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for done := 0; done < benchMessages/5; {
		claimed, err := st.Claim(ctx, "bench", 500, time.Minute)
		if err != nil || len(claimed) == 0 {
			b.Fatal("claim", err, len(claimed))
		}
		results := make([]queue.Result, len(claimed))
		for i, c := range claimed {
			rs, code := queue.RecipientDelivered, 250
			if i%10 == 0 {
				rs, code = queue.RecipientFailed, 550
			}
			now := time.Now()
			results[i] = queue.Result{MessageID: c.ID, Recipients: []queue.RecipientResult{{Address: c.Recipients[0].Address, Status: rs, Code: code}},
				Attempt: queue.Attempt{StartedAt: now, FinishedAt: now, Route: "relay:bench:25", Transcript: "250 OK"}}
		}
		if _, err := st.Complete(ctx, "bench", results); err != nil {
			b.Fatal(err)
		}
		done += len(claimed)
	}
	// The index is written off the accept path; have it complete.
	if _, err := st.IndexPending(ctx); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path+".done", nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkPages measures the overview, list pages, searches and a
// message's views with 100,000 messages in the store.
func BenchmarkPages(b *testing.B) {
	path := benchDB(b)
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c, err := outbox.New(outbox.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{Client: c})
	if err != nil {
		b.Fatal(err)
	}
	// cold runs every insight query on every request, as the first
	// dashboard to look after the cache lapses does.
	cold, err := New(Config{Client: c, InsightsTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	page, err := st.List(context.Background(), queue.Filter{Limit: 1})
	if err != nil || len(page.Messages) == 0 {
		b.Fatal(err)
	}
	id := page.Messages[0].ID
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	cookie := rec.Result().Cookies()[0]
	cold.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	coldCookie := rec.Result().Cookies()[0]
	for _, p := range []struct {
		name, path string
		cold       bool
	}{
		{"overview-cold", "/", true}, {"overview-live-cold", "/live/overview", true},
		{"overview", "/", false}, {"overview-live", "/live/overview", false}, {"list", "/messages", false},
		{"list-filtered", "/messages?status=failed&subject=order+9", false},
		{"list-no-match", "/messages?rcpt=nobody%40nowhere", false},
		{"list-second-page", "/messages?cursor=" + page.Next, false}, {"detail", "/messages/" + id, false},
		{"detail-links", "/messages/" + id + "?tab=links", false}, {"detail-source", "/messages/" + id + "?tab=source", false},
		// Searches: a word in every message (the first page of 100,000
		// matches), in one in a thousand, in none; a display name.
		{"search-every", "/messages?q=parcel", false}, {"search-rare", "/messages?q=customer+4242", false},
		{"search-none", "/messages?q=zzyzx", false}, {"search-name", "/messages?q=shop+support+4242", false},
		{"inbox-search", "/inbox?q=warehouse", false},
	} {
		hh, ck := h, cookie
		if p.cold {
			hh, ck = cold, coldCookie
		}
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", p.path, nil)
				req.AddCookie(ck)
				rec := httptest.NewRecorder()
				hh.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", p.path, rec.Code)
				}
			}
		})
	}
}
