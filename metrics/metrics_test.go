package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/metrics"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

func TestMetricsAfterDelivery(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "o.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := metrics.New(st)
	c, err := outbox.New(outbox.Config{Store: st, OnEnqueue: m.Accepted, OnResult: m.Result, OnOutcome: m.Outcome})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	defer c.Shutdown(context.Background())
	id, err := c.Enqueue(context.Background(), &message.Message{From: message.Address{Email: "a@x.test"},
		To: []message.Address{{Email: "b@x.test"}, {Email: "c@x.test"}}, Subject: "s", Text: "t"},
		&outbox.EnqueueOptions{Source: queue.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		msg, err := c.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Status == queue.StatusDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %s", msg.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	// OnResult runs just after the commit that Status saw: scrape until the
	// delivery shows, within a bound.
	var text string
	for range 200 {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if text = string(body); strings.Contains(text, `outbox_recipients_total{outcome="delivered"`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{
		`outbox_messages_accepted_total{source="api"} 1`,
		`outbox_recipients_total{outcome="delivered",route="capture"} 2`,
		`outbox_smtp_replies_total{code="250",route="capture"} 2`,
		`outbox_queue_messages{status="delivered"} 1`,
		`outbox_queue_messages{status="queued"} 0`,
		`outbox_delivery_latency_seconds_count{route="capture"} 2`,
		`outbox_attempt_duration_seconds_count{route="capture"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// A user's tag never becomes a label: this message counts as library.
	if _, err := c.Enqueue(context.Background(), &message.Message{From: message.Address{Email: "a@x.test"},
		To: []message.Address{{Email: "d@x.test"}}, Subject: "s", Text: "t"},
		&outbox.EnqueueOptions{Tags: map[string]string{"source": "attacker-chosen"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if text := string(body); strings.Contains(text, "attacker-chosen") ||
		!strings.Contains(text, `outbox_messages_accepted_total{source="library"} 1`) {
		t.Errorf("a tag reached the metrics, or the library source was not counted:\n%s", text)
	}
}

func TestRouteLabelIsBounded(t *testing.T) {
	for in, want := range map[string]string{"mx:mx1.a.test": "mx", "mx:mx1.a.test, relay:r:25": "mx",
		"relay:smtp.example.com:587": "relay:smtp.example.com:587", "capture": "capture", "dns": "mx", "": "unknown"} {
		if got := metrics.RouteLabel(in); got != want {
			t.Errorf("RouteLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
