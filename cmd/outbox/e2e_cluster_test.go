package main_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/pgtest"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/postgres"
)

var clusterSubjectRe = regexp.MustCompile(`Subject: cluster (\d+)`)

// clusterWorkers is each node's --max-connections. A node starts at most
// --max-connections+64 deliveries not yet committed (the engine's
// default), the sessions under way included, so a kill repeats at most
// that many.
const (
	clusterWorkers     = 8
	clusterUncommitted = 64
)

// startCluster runs n daemons on one PostgreSQL schema, delivering to sink.
func startCluster(t testing.TB, n int, dsn string, sink *smtpsink.Sink) []*daemonProc {
	t.Helper()
	nodes := make([]*daemonProc, n)
	for i := range nodes {
		nodes[i] = startDaemon(t, t.TempDir(), "--db", dsn, "--relay", "smtp://"+sink.Addr()+"?starttls=off",
			"--max-connections", fmt.Sprint(clusterWorkers), "--lease", "2s")
	}
	return nodes
}

// submitAll posts messages [from, to) round-robin across the nodes from 16
// concurrent clients and returns the elapsed time.
func submitAll(t testing.TB, nodes []*daemonProc, from, to int) time.Duration {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				body := fmt.Sprintf(`{"from":"app@example.test","to":["r%d@example.test"],"subject":"cluster %d","text":"x"}`, i, i)
				if code := nodes[i%len(nodes)].api("POST", "/v1/messages", "application/json", strings.NewReader(body), nil); code != 202 {
					t.Errorf("POST %d: HTTP %d", i, code)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// waitAllDelivered polls the shared store until n messages are delivered.
func waitAllDelivered(t testing.TB, st queue.Store, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := st.Counts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c[queue.StatusDelivered] == int64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v, want %d delivered", timeout, c, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterSurvivesSIGKILL: three nodes share one PostgreSQL queue and
// deliver 5,000 messages; one is killed mid-run. Every message arrives, and
// repeats are bounded by what the killed node had in flight.
func TestClusterSurvivesSIGKILL(t *testing.T) {
	dsn, _ := pgtest.FreshSchema(t)
	sink := startSink(t, smtpsink.Options{})
	nodes := startCluster(t, 3, dsn, sink)
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	const n = 5000
	submitAll(t, nodes, 0, n/2)
	sink.WaitFor(n/5, 60*time.Second)
	if err := nodes[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-nodes[1].done
	killedAt := len(sink.Received())
	submitAll(t, []*daemonProc{nodes[0], nodes[2]}, n/2, n)
	waitAllDelivered(t, st, n, 3*time.Minute)

	seen := map[string]int{}
	for _, r := range sink.Received() {
		if m := clusterSubjectRe.FindSubmatch(r.Data); m != nil {
			seen[string(m[1])]++
		}
	}
	dups := 0
	for i := range n {
		c := seen[fmt.Sprint(i)]
		if c == 0 {
			t.Errorf("message %d never arrived", i)
		}
		dups += max(c-1, 0)
	}
	bound := clusterWorkers + clusterUncommitted
	t.Logf("node killed after %d deliveries; %d duplicates (bound %d)", killedAt, dups, bound)
	if dups > bound {
		t.Errorf("%d duplicates, more than the %d deliveries the killed node may have had uncommitted", dups, bound)
	}
	if killedAt >= n {
		t.Error("everything was delivered before the kill; the test proved nothing")
	}
}

// BenchmarkCluster measures 1, 2 and 3 nodes on one PostgreSQL queue:
// acceptance over the HTTP API (16 clients spread over the nodes) and
// end-to-end delivery (from the first submission until every message is
// delivered to a loopback sink).
func BenchmarkCluster(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			dsn, _ := pgtest.FreshSchema(b)
			sink, err := smtpsink.Start(smtpsink.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Stop()
			nodes := startCluster(b, n, dsn, sink)
			st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			b.ResetTimer()
			start := time.Now()
			accept := submitAll(b, nodes, 0, b.N)
			waitAllDelivered(b, st, b.N, 10*time.Minute)
			total := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/accept.Seconds(), "accepted/s")
			b.ReportMetric(float64(b.N)/total.Seconds(), "delivered/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
