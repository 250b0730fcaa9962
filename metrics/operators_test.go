package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/metrics"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
	"github.com/outbox-mail/outbox/submission"
	"github.com/outbox-mail/outbox/webhook"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: HTTP %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

// value is the sample of a series in a scrape, or -1.
func value(text, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestOperatorMetrics scrapes the handler over a real SQLite store: the
// build, the oldest waiting message's age, the webhook backlog, and the
// counters the listener and the dispatcher feed, each label set bounded.
func TestOperatorMetrics(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "o.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := metrics.New(st)
	m.BuildInfo("v1.2.3", "abc123", "go1.99")
	text := scrape(t, m)
	for series, want := range map[string]float64{
		`outbox_build_info{commit="abc123",goversion="go1.99",version="v1.2.3"}`: 1,
		`outbox_queue_oldest_waiting_seconds`:                                    0,
		`outbox_webhook_events{state="waiting"}`:                                 0,
		`outbox_webhook_events{state="abandoned"}`:                               0,
		`outbox_submission_rejections_total{reason="busy"}`:                      0,
		`outbox_submission_rejections_total{reason="store_unavailable"}`:         0,
		`outbox_submission_auth_failures_total{reason="bad_credentials"}`:        0,
		`outbox_webhook_posts_total{result="failed"}`:                            0,
	} {
		if got := value(text, series); got != want {
			t.Errorf("fresh: %s = %v, want %v", series, got, want)
		}
	}

	// A message due in an hour waits; its age grows from its creation.
	c, err := outbox.New(outbox.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Enqueue(ctx, &message.Message{From: message.Address{Email: "a@x.test"},
		To: []message.Address{{Email: "b@x.test"}}, Subject: "s", Text: "t"},
		&outbox.EnqueueOptions{SendAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if age := value(scrape(t, m), "outbox_queue_oldest_waiting_seconds"); age < 0.1 || age > 3600 {
		t.Errorf("oldest waiting: %v s, want at least the 0.1 s slept", age)
	}

	// Two events, one then abandoned.
	if err := st.AddEvents(ctx, []queue.NewEvent{{Endpoint: "http://h/a", Type: "delivered", Payload: []byte(`{}`)},
		{Endpoint: "http://h/b", Type: "delivered", Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	evs, err := st.ClaimEvents(ctx, "me", 1, time.Minute)
	if err != nil || len(evs) != 1 {
		t.Fatalf("claim: %v %v", evs, err)
	}
	if err := st.FinishEvent(ctx, "me", evs[0].ID, false, time.Time{}, "gave up"); err != nil {
		t.Fatal(err)
	}

	m.SubmissionRejected(submission.RejectBusy)
	m.SubmissionRejected(submission.RejectBusy)
	m.SubmissionRejected("attacker-chosen")
	m.SubmissionAuthFailed(submission.AuthBadCredentials)
	m.WebhookPosted(webhook.PostFailed)
	m.WebhookPosted(webhook.PostAbandoned)
	text = scrape(t, m)
	for series, want := range map[string]float64{
		`outbox_webhook_events{state="waiting"}`:                          1,
		`outbox_webhook_events{state="abandoned"}`:                        1,
		`outbox_submission_rejections_total{reason="busy"}`:               2,
		`outbox_submission_rejections_total{reason="other"}`:              1,
		`outbox_submission_auth_failures_total{reason="bad_credentials"}`: 1,
		`outbox_webhook_posts_total{result="failed"}`:                     1,
		`outbox_webhook_posts_total{result="abandoned"}`:                  1,
		`outbox_webhook_posts_total{result="delivered"}`:                  0,
	} {
		if got := value(text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(text, "attacker-chosen") {
		t.Error("a reason outside the set became a label value")
	}
}
