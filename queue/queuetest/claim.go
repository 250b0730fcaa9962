package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// expired is a lease that has lapsed the moment it is granted.
const expired = -time.Millisecond

func testClaimLeases(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("b@example.com", "c@example.com"))
	before := time.Now()
	c := claimOne(t, s, "w1", id, time.Minute)
	if len(c.Recipients) != 2 || c.Status != queue.StatusSending || c.Attempts != 1 {
		t.Errorf("claimed %+v, want 2 recipients, sending, attempt 1", c.Message)
	}
	if c.LeaseExpiresAt.Before(before.Add(time.Minute-2*time.Millisecond)) ||
		c.LeaseExpiresAt.After(time.Now().Add(time.Minute+2*time.Millisecond)) {
		t.Errorf("LeaseExpiresAt = %v, want about %v", c.LeaseExpiresAt, before.Add(time.Minute))
	}
	wantStatus(t, s, id, queue.StatusSending)
	if c2 := claim(t, s, "w2", 10, time.Minute); len(c2) != 0 {
		t.Fatalf("second owner claimed %v under a live lease", ids(c2))
	}
	if c3 := claim(t, s, "w1", 10, time.Minute); len(c3) != 0 {
		t.Fatalf("same owner claimed %v twice under a live lease", ids(c3))
	}
	if got := claim(t, s, "w1", 0, time.Minute); len(got) != 0 {
		t.Errorf("Claim with limit 0 returned %d", len(got))
	}
}

func testExpiredLease(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("b@example.com"))
	claimOne(t, s, "w1", id, expired)
	c := claimOne(t, s, "w2", id, time.Minute)
	if c.Attempts != 2 {
		t.Errorf("Attempts after two claims = %d, want 2", c.Attempts)
	}
	if c3 := claim(t, s, "w3", 10, time.Minute); len(c3) != 0 {
		t.Fatalf("third owner claimed %v under w2's live lease", ids(c3))
	}
}

func testCompleteLeaseLost(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("b@example.com"))
	claimOne(t, s, "w1", id, expired)
	other := enqueue(t, s, newMsg("c@example.com"))
	// w2 takes both: id's lease lapsed, and w1 never held other.
	if c := claim(t, s, "w2", 10, time.Minute); len(c) != 2 {
		t.Fatalf("w2 claimed %v, want both messages", ids(c))
	}
	errs := complete(t, s, "w1",
		queue.Result{MessageID: id, Recipients: []queue.RecipientResult{{Address: "b@example.com", Status: queue.RecipientDelivered, Code: 250}}},
		queue.Result{MessageID: other, Recipients: []queue.RecipientResult{{Address: "c@example.com", Status: queue.RecipientDelivered, Code: 250}}},
		queue.Result{MessageID: "0190d5a0-0000-7000-8000-000000000000"},
	)
	for i, err := range errs {
		if !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("result %d: %v, want ErrLeaseLost", i, err)
		}
	}
	for _, mid := range []string{id, other} {
		m := wantStatus(t, s, mid, queue.StatusSending)
		if r := m.Recipients[0]; r.Status != queue.RecipientPending || r.Attempts != 0 || r.Code != 0 {
			t.Errorf("lost-lease Complete changed recipient %+v", r)
		}
		if a, err := s.Attempts(context.Background(), mid); err != nil || len(a) != 0 {
			t.Errorf("lost-lease Complete recorded attempts %v %v", a, err)
		}
	}
	// The holder's results are recorded, in the same batch as a lost one.
	errs = complete(t, s, "w2",
		queue.Result{MessageID: id, Recipients: []queue.RecipientResult{{Address: "b@example.com", Status: queue.RecipientDelivered, Code: 250}}},
		queue.Result{MessageID: "0190d5a0-0000-7000-8000-000000000000"},
	)
	if errs[0] != nil || !errors.Is(errs[1], queue.ErrLeaseLost) {
		t.Errorf("Complete errors = %v, want [nil ErrLeaseLost]", errs)
	}
	wantStatus(t, s, id, queue.StatusDelivered)
	// Completing twice: the lease went with the first result.
	errs = complete(t, s, "w2", queue.Result{MessageID: id})
	if !errors.Is(errs[0], queue.ErrLeaseLost) {
		t.Errorf("second Complete: %v, want ErrLeaseLost", errs[0])
	}
}

func testRecipientResults(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("a@x.test", "b@x.test", "c@x.test"))
	claimOne(t, s, "w1", id, time.Minute)
	next := time.Now().Add(time.Hour)
	errs := complete(t, s, "w1", queue.Result{
		MessageID: id,
		Recipients: []queue.RecipientResult{
			{Address: "a@x.test", Status: queue.RecipientDelivered, Code: 250, EnhancedCode: "2.0.0", Text: "ok"},
			{Address: "b@x.test", Status: queue.RecipientDeferred, Code: 451, EnhancedCode: "4.7.1", Text: "try later"},
			{Address: "c@x.test", Status: queue.RecipientFailed, Code: 550, EnhancedCode: "5.1.1", Text: "no such user"},
		},
		NextAttemptAt: next,
	})
	if errs[0] != nil {
		t.Fatalf("Complete: %v", errs[0])
	}
	m := wantStatus(t, s, id, queue.StatusDeferred)
	if !near(m.NextAttemptAt, next) {
		t.Errorf("NextAttemptAt = %v, want %v", m.NextAttemptAt, next)
	}
	want := map[string]queue.Recipient{
		"a@x.test": {Status: queue.RecipientDelivered, Code: 250, EnhancedCode: "2.0.0", Text: "ok", Attempts: 1},
		"b@x.test": {Status: queue.RecipientDeferred, Code: 451, EnhancedCode: "4.7.1", Text: "try later", Attempts: 1},
		"c@x.test": {Status: queue.RecipientFailed, Code: 550, EnhancedCode: "5.1.1", Text: "no such user", Attempts: 1},
	}
	for addr, w := range want {
		r := recipient(t, m, addr)
		if r.Status != w.Status || r.Code != w.Code || r.EnhancedCode != w.EnhancedCode || r.Text != w.Text || r.Attempts != w.Attempts {
			t.Errorf("recipient %s = %+v, want %+v", addr, r, w)
		}
		if r.LastAttemptAt.IsZero() {
			t.Errorf("recipient %s has no LastAttemptAt", addr)
		}
	}
	if c := claim(t, s, "w1", 10, time.Minute); len(c) != 0 {
		t.Fatalf("claimed %v before its next attempt", ids(c))
	}
	// Once due, only the deferred recipient is handed out again.
	if err := s.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	c := claimOne(t, s, "w1", id, time.Minute)
	if len(c.Recipients) != 1 || c.Recipients[0].Address != "b@x.test" {
		t.Fatalf("claimed recipients %+v, want only b@x.test", c.Recipients)
	}
	complete(t, s, "w1", queue.Result{MessageID: id, Recipients: []queue.RecipientResult{
		{Address: "b@x.test", Status: queue.RecipientDelivered, Code: 250}}})
	m = wantStatus(t, s, id, queue.StatusPartial)
	if !m.NextAttemptAt.IsZero() {
		t.Errorf("final message has NextAttemptAt %v", m.NextAttemptAt)
	}
	if r := recipient(t, m, "b@x.test"); r.Attempts != 2 || r.Status != queue.RecipientDelivered {
		t.Errorf("b@x.test = %+v, want delivered after 2 attempts", r)
	}
}

func testFinalStatuses(t *testing.T, s queue.Store) {
	cases := []struct {
		results []queue.RecipientStatus
		want    queue.Status
	}{
		{[]queue.RecipientStatus{queue.RecipientDelivered, queue.RecipientDelivered}, queue.StatusDelivered},
		{[]queue.RecipientStatus{queue.RecipientFailed, queue.RecipientFailed}, queue.StatusFailed},
		{[]queue.RecipientStatus{queue.RecipientDelivered, queue.RecipientFailed}, queue.StatusPartial},
		{[]queue.RecipientStatus{queue.RecipientDeferred, queue.RecipientDeferred}, queue.StatusDeferred},
	}
	for _, tc := range cases {
		id := enqueue(t, s, newMsg("a@x.test", "b@x.test"))
		claimOne(t, s, "w1", id, time.Minute)
		res := queue.Result{MessageID: id, NextAttemptAt: time.Now().Add(time.Hour)}
		for i, st := range tc.results {
			res.Recipients = append(res.Recipients, queue.RecipientResult{Address: fmt.Sprintf("%c@x.test", 'a'+i), Status: st})
		}
		if errs := complete(t, s, "w1", res); errs[0] != nil {
			t.Fatal(errs[0])
		}
		wantStatus(t, s, id, tc.want)
	}
	// A result naming only some recipients leaves the rest open.
	id := enqueue(t, s, newMsg("a@x.test", "b@x.test"))
	claimOne(t, s, "w1", id, time.Minute)
	complete(t, s, "w1", queue.Result{MessageID: id, Recipients: []queue.RecipientResult{
		{Address: "a@x.test", Status: queue.RecipientDelivered}}})
	m := wantStatus(t, s, id, queue.StatusDeferred)
	if r := recipient(t, m, "b@x.test"); r.Status != queue.RecipientPending {
		t.Errorf("unreported recipient became %s", r.Status)
	}
}

func testAttemptsRecorded(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("b@example.com"))
	started := time.Now().Add(-time.Second)
	for i, st := range []queue.RecipientStatus{queue.RecipientDeferred, queue.RecipientDelivered} {
		if i > 0 {
			if err := s.Retry(context.Background(), id); err != nil {
				t.Fatal(err)
			}
		}
		claimOne(t, s, "w1", id, time.Minute)
		complete(t, s, "w1", queue.Result{
			MessageID:     id,
			Recipients:    []queue.RecipientResult{{Address: "b@example.com", Status: st, Code: 250}},
			NextAttemptAt: time.Now().Add(time.Hour),
			Attempt: queue.Attempt{StartedAt: started, FinishedAt: started.Add(time.Second),
				Route: "relay:smtp.example.com:587", Error: fmt.Sprint("err", i),
				Transcript: fmt.Sprintf("S: 220 hi\r\nC: EHLO x\r\n#%d", i)},
		})
	}
	as, err := s.Attempts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 {
		t.Fatalf("%d attempts recorded, want 2", len(as))
	}
	// Both attempts report an error, so the default policy keeps both
	// transcripts.
	wantTranscript := []string{"S: 220 hi\r\nC: EHLO x\r\n#0", "S: 220 hi\r\nC: EHLO x\r\n#1"}
	for i, a := range as {
		if a.Number != i+1 || a.Route != "relay:smtp.example.com:587" || a.Error != fmt.Sprint("err", i) ||
			a.Transcript != wantTranscript[i] {
			t.Errorf("attempt %d = %+v", i, a)
		}
		if !near(a.StartedAt, started) || !near(a.FinishedAt, started.Add(time.Second)) {
			t.Errorf("attempt %d times %v %v, want %v +1s", i, a.StartedAt, a.FinishedAt, started)
		}
	}
	if m := wantStatus(t, s, id, queue.StatusDelivered); m.Attempts != 2 {
		t.Errorf("message Attempts = %d, want 2", m.Attempts)
	}
}

func testRelease(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("b@example.com"))
	claimOne(t, s, "w1", id, time.Hour)
	// Another owner's release is ignored.
	if err := s.Release(context.Background(), "w2", []string{id}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s, id, queue.StatusSending)
	if err := s.Release(context.Background(), "w1", []string{id}); err != nil {
		t.Fatal(err)
	}
	m := wantStatus(t, s, id, queue.StatusQueued)
	if m.NextAttemptAt.After(time.Now().Add(2 * time.Millisecond)) {
		t.Errorf("released message next due %v, want now", m.NextAttemptAt)
	}
	claimOne(t, s, "w2", id, time.Hour)
	// A message with a deferred recipient goes back as deferred.
	id2 := enqueue(t, s, newMsg("a@x.test", "b@x.test"))
	claimOne(t, s, "w1", id2, time.Minute)
	complete(t, s, "w1", queue.Result{MessageID: id2, Recipients: []queue.RecipientResult{
		{Address: "a@x.test", Status: queue.RecipientDeferred}}})
	claimOne(t, s, "w1", id2, time.Minute)
	if err := s.Release(context.Background(), "w1", []string{id2}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s, id2, queue.StatusDeferred)
}

func testRenew(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("b@example.com"))
	claimOne(t, s, "w1", id, expired)
	// Renewal by someone else does not keep the lease alive.
	if err := s.Renew(context.Background(), "w2", []string{id}, time.Hour); err != nil {
		t.Fatal(err)
	}
	claimOne(t, s, "w3", id, expired)
	// w1 lost the message to w3, so its renewal is ignored too.
	if err := s.Renew(context.Background(), "w1", []string{id}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Renew(context.Background(), "w3", []string{id}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if c := claim(t, s, "w4", 10, time.Minute); len(c) != 0 {
		t.Fatalf("claimed %v although its lease was renewed", ids(c))
	}
	due, ok, err := s.NextDue(context.Background())
	if err != nil || !ok || due.Before(time.Now().Add(59*time.Minute)) {
		t.Errorf("NextDue = %v %v %v, want the renewed lease's expiry", due, ok, err)
	}
	if errs := complete(t, s, "w3", queue.Result{MessageID: id, Recipients: []queue.RecipientResult{
		{Address: "b@example.com", Status: queue.RecipientDelivered}}}); errs[0] != nil {
		t.Errorf("Complete by the renewed holder: %v", errs[0])
	}
}

func testNextDue(t *testing.T, s queue.Store) {
	ctx := context.Background()
	if _, ok, err := s.NextDue(ctx); err != nil || ok {
		t.Fatalf("NextDue on an empty store: ok %v err %v", ok, err)
	}
	later, sooner := time.Now().Add(2*time.Hour), time.Now().Add(time.Hour)
	for _, at := range []time.Time{later, sooner} {
		m := newMsg("b@example.com")
		m.SendAt = at
		enqueue(t, s, m)
	}
	if due, ok, err := s.NextDue(ctx); err != nil || !ok || !near(due, sooner) {
		t.Fatalf("NextDue = %v %v %v, want %v", due, ok, err, sooner)
	}
	// A live lease counts: the message is due again when it lapses.
	id := enqueue(t, s, newMsg("b@example.com"))
	c := claimOne(t, s, "w1", id, 30*time.Minute)
	if due, ok, err := s.NextDue(ctx); err != nil || !ok || !near(due, c.LeaseExpiresAt) {
		t.Fatalf("NextDue = %v %v %v, want the lease expiry %v", due, ok, err, c.LeaseExpiresAt)
	}
	complete(t, s, "w1", queue.Result{MessageID: id, Recipients: []queue.RecipientResult{
		{Address: "b@example.com", Status: queue.RecipientDelivered}}})
	if due, _, _ := s.NextDue(ctx); !near(due, sooner) {
		t.Fatalf("NextDue after delivery = %v, want %v", due, sooner)
	}
	enqueue(t, s, newMsg("b@example.com"))
	if due, ok, err := s.NextDue(ctx); err != nil || !ok || due.After(time.Now()) {
		t.Fatalf("NextDue with a message due now = %v %v %v", due, ok, err)
	}
}

func testConcurrentClaimers(t *testing.T, s queue.Store) {
	const n, workers = 200, 4
	want := make(map[string]bool, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Go(func() {
			id, err := s.Enqueue(context.Background(), newMsg(fmt.Sprintf("r%d@x.test", i)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("Enqueue: %v", err)
			}
			want[id] = true
		})
	}
	wg.Wait()
	claimers := make(map[string]queue.Store, workers)
	for w := range workers {
		claimers[fmt.Sprint("worker-", w)] = s
	}
	seen := ClaimAll(t, claimers, 7)
	if len(seen) != n {
		t.Fatalf("%d messages claimed, want %d", len(seen), n)
	}
	for id := range want {
		if seen[id] == "" {
			t.Errorf("message %s never claimed", id)
		}
	}
	wantCount(t, s, queue.StatusSending, n)
}

// testStaleAttemptFenced: a worker whose lease lapsed while its own
// process claimed the message again cannot record its stale result over
// the new attempt's.
func testStaleAttemptFenced(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("b@example.com"))
	first := claimOne(t, s, "node", id, expired)
	second := claimOne(t, s, "node", id, time.Minute)
	if second.Attempts != first.Attempts+1 {
		t.Fatalf("attempts %d then %d", first.Attempts, second.Attempts)
	}
	result := func(number, code int, st queue.RecipientStatus) queue.Result {
		return queue.Result{MessageID: id, Attempt: queue.Attempt{Number: number},
			Recipients: []queue.RecipientResult{{Address: "b@example.com", Status: st, Code: code}}}
	}
	if errs := complete(t, s, "node", result(first.Attempts, 550, queue.RecipientFailed)); !errors.Is(errs[0], queue.ErrLeaseLost) {
		t.Fatalf("stale attempt's result: %v, want ErrLeaseLost", errs[0])
	}
	if errs := complete(t, s, "node", result(second.Attempts, 250, queue.RecipientDelivered)); errs[0] != nil {
		t.Fatalf("current attempt's result: %v", errs[0])
	}
	if r := wantStatus(t, s, id, queue.StatusDelivered).Recipients[0]; r.Code != 250 {
		t.Errorf("recipient %+v, want the current attempt's 250", r)
	}
}

// ClaimAll runs one goroutine per owner in claimers, each claiming up to
// limit messages at a time from its store under an hour's lease until a
// claim comes back empty; it fails t if any message is claimed twice and
// returns which owner claimed each message. Stores on one shared database
// (PostgreSQL nodes) use it to show that claims never collide.
func ClaimAll(t *testing.T, claimers map[string]queue.Store, limit int) map[string]string {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	seen := make(map[string]string)
	for owner, s := range claimers {
		wg.Go(func() {
			for {
				c, err := s.Claim(context.Background(), owner, limit, time.Hour)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(c) == 0 {
					return
				}
				mu.Lock()
				for _, m := range c {
					if prev, dup := seen[m.ID]; dup {
						t.Errorf("%s claimed by %s and %s", m.ID, prev, owner)
					}
					seen[m.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return seen
}
