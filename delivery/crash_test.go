package delivery_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
	"github.com/outbox-mail/outbox/smtp"
)

// The crash test runs delivery in a child process (this test binary again,
// with crashChildEnv set) and kills it with SIGKILL.
const crashChildEnv = "OUTBOX_CRASH_CHILD"

// crashUncommitted is the child's bound on deliveries not yet committed.
const crashUncommitted = 1

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		os.Exit(crashChild(spec))
	}
	os.Exit(m.Run())
}

// crashChild delivers from the store at dbPath to the sink at addr; in
// "settle" mode it exits once nothing is left to deliver, otherwise it runs
// until killed.
func crashChild(spec string) int {
	var mode, dbPath, addr string
	if _, err := fmt.Sscanf(spec, "%s %s %s", &mode, &dbPath, &addr); err != nil {
		fmt.Fprintln(os.Stderr, "bad child spec:", err)
		return 2
	}
	st, err := sqlite.Open(dbPath, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, _ := smtp.ParseRelayURL("smtp://" + addr + "?starttls=off")
	tr := delivery.NewSMTPRelay(r, nil, smtp.PoolOptions{MaxConns: 1})
	// One delivery started and not committed at most (the session under
	// way included): a kill can then repeat at most one.
	// Two claimed at most: with a lease of 300ms, mail waiting longer in
	// memory could see its lease lapse under load and be claimed twice.
	d, err := delivery.New(delivery.Config{Store: st, Transport: tr, MaxConnections: 1, MaxUncommitted: crashUncommitted, MaxInFlight: 2,
		Lease: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond, Logger: quietLog})
	if err == nil {
		err = d.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		c, err := st.Counts(context.Background())
		if err == nil && mode == "settle" && c[queue.StatusQueued]+c[queue.StatusDeferred]+c[queue.StatusSending] == 0 {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Shutdown(ctx)
	tr.Close()
	st.Close()
	return 0
}

func TestCrashLosesNothing(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	sink := startSink(t, smtpsink.Options{Delay: time.Millisecond})
	dbPath := filepath.Join(t.TempDir(), "outbox.db")
	st, err := sqlite.Open(dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const first, second, kills = 150, 150, 6
	for i := range first {
		enqueue(t, st, i, "r@x.test")
	}
	// More mail is accepted while the children are being killed.
	enqueued := make(chan struct{})
	go func() {
		defer close(enqueued)
		for i := first; i < first+second; i++ {
			_, err := st.Enqueue(context.Background(), queue.NewMessage{From: "sender@app.test",
				Recipients: []string{"r@x.test"}, Subject: fmt.Sprintf("test %d", i),
				Body: strings.NewReader(rawMessage(i, "r@x.test"))})
			if err != nil {
				t.Errorf("enqueue %d: %v", i, err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for k := range kills {
		cmd := crashCommand("run", dbPath, sink.Addr())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		cmd.Wait()
	}
	<-enqueued
	before := len(sink.Received())
	cmd := crashCommand("settle", dbPath, sink.Addr())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	got := countByNumber(sink.Received())
	dups := 0
	for i := range first + second {
		c := got[strconv.Itoa(i)]
		if c == 0 {
			t.Errorf("message %d was accepted but never delivered", i)
		}
		dups += max(c-1, 0)
	}
	t.Logf("%d kills; %d delivered before the final run; %d duplicates", kills, before, dups)
	if before == 0 {
		t.Error("the killed children delivered nothing; the kills tested nothing")
	}
	// Per kill: the deliveries started and not yet committed.
	if bound := kills * crashUncommitted; dups > bound {
		t.Errorf("%d duplicates after %d kills; at most %d per kill", dups, kills, crashUncommitted)
	}
	counts, err := st.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts[queue.StatusDelivered] != first+second {
		t.Errorf("final statuses %v, want %d delivered", counts, first+second)
	}
}

func crashCommand(mode, dbPath, addr string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+mode+" "+dbPath+" "+addr)
	return cmd
}
