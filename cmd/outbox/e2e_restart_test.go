package main_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

var restartSubjectRe = regexp.MustCompile(`Subject: restart (\d+)`)

// TestRestartMidDelivery stops the daemon with SIGTERM while it is
// delivering, starts it again on the same store, and checks that every
// accepted message arrives once and reads delivered.
func TestRestartMidDelivery(t *testing.T) {
	sink := startSink(t, smtpsink.Options{Delay: 10 * time.Millisecond})
	dir := t.TempDir()
	relay := []string{"--relay", "smtp://" + sink.Addr() + "?starttls=off", "--max-connections", "2"}
	d := startDaemon(t, dir, relay...)
	const n = 40
	ids := make([]string, n)
	for i := range n {
		var acc struct{ ID string }
		body := fmt.Sprintf(`{"from":"app@example.test","to":["r%d@example.test"],"subject":"restart %d","text":"x"}`, i, i)
		if code := d.api("POST", "/v1/messages", "application/json", strings.NewReader(body), &acc); code != 202 {
			t.Fatalf("POST %d: HTTP %d", i, code)
		}
		ids[i] = acc.ID
	}
	sink.WaitFor(5, 20*time.Second)
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.logs)
	}
	before := len(sink.Received())
	if before >= n {
		t.Fatalf("all %d delivered before the restart; the test proved nothing", n)
	}
	if !strings.Contains(d.logs.String(), `msg=stopped`) {
		t.Errorf("daemon did not log a clean stop:\n%s", d.logs)
	}

	d2 := startDaemon(t, dir, relay...)
	for _, id := range ids {
		m := d2.waitStatus(id, queue.StatusDelivered)
		if m.Recipients[0].Code != 250 {
			t.Errorf("%s: %+v", id, m.Recipients[0])
		}
	}
	seen := map[string]int{}
	for _, r := range sink.Received() {
		if m := restartSubjectRe.FindSubmatch(r.Data); m != nil {
			seen[string(m[1])]++
		}
	}
	for i := range n {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Errorf("message %d arrived %d times, want once", i, c)
		}
	}
	t.Logf("%d of %d delivered before SIGTERM, the rest after the restart", before, n)
}
