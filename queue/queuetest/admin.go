package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

func list(t *testing.T, s queue.Store, f queue.Filter) *queue.ListPage {
	t.Helper()
	p, err := s.List(context.Background(), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	return p
}

func pageIDs(p *queue.ListPage) []string {
	out := make([]string, len(p.Messages))
	for i, m := range p.Messages {
		out[i] = m.ID
	}
	return out
}

func testListPaging(t *testing.T, s queue.Store) {
	const n = 120
	var enqueued []string
	for i := range n {
		enqueued = append(enqueued, enqueue(t, s, newMsg(fmt.Sprintf("r%d@x.test", i))))
	}
	newestFirst := slices.Clone(enqueued)
	slices.Reverse(newestFirst)

	var got []string
	f := queue.Filter{Limit: 25}
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		p := list(t, s, f)
		if len(p.Messages) > 25 {
			t.Fatalf("page of %d messages, limit 25", len(p.Messages))
		}
		for _, m := range p.Messages {
			if len(m.Recipients) != 1 {
				t.Fatalf("listed message %s has %d recipients, want 1", m.ID, len(m.Recipients))
			}
		}
		got = append(got, pageIDs(p)...)
		if p.Next == "" {
			break
		}
		f.Cursor = p.Next
	}
	if !slices.Equal(got, newestFirst) {
		t.Fatalf("paged listing of %d messages is not the %d enqueued, newest first", len(got), n)
	}
	if p := list(t, s, queue.Filter{}); len(p.Messages) != 50 || p.Next == "" {
		t.Errorf("default page has %d messages (next %q), want 50 and a cursor", len(p.Messages), p.Next)
	}
	if p := list(t, s, queue.Filter{Limit: 200}); len(p.Messages) != n || p.Next != "" {
		t.Errorf("page of limit 200 has %d messages (next %q), want all %d and no cursor", len(p.Messages), p.Next, n)
	}
	if _, err := s.List(context.Background(), queue.Filter{Cursor: "!!not a cursor!!"}); err == nil {
		t.Error("List with a malformed cursor succeeded")
	}
}

func testListFilters(t *testing.T, s queue.Store) {
	add := func(from, subject string, to ...string) string {
		m := newMsg(to...)
		m.From, m.Subject = from, subject
		return enqueue(t, s, m)
	}
	m1 := add("alice@a.test", "Invoice 42", "x@one.test")
	time.Sleep(3 * time.Millisecond) // separate creation times for Since/Until
	mid := time.Now()
	time.Sleep(3 * time.Millisecond)
	m2 := add("bob@b.test", "Welcome", "y@two.test", "z@one.test")
	m3 := add("alice@a.test", "Reset password", "w@three.test")
	claimed := claim(t, s, "w1", 10, time.Minute)
	var results []queue.Result
	for _, c := range claimed {
		st := queue.RecipientDeferred
		if c.ID == m3 {
			st = queue.RecipientDelivered
		}
		var rr []queue.RecipientResult
		for _, r := range c.Recipients {
			rr = append(rr, queue.RecipientResult{Address: r.Address, Status: st})
		}
		results = append(results, queue.Result{MessageID: c.ID, Recipients: rr, NextAttemptAt: time.Now().Add(time.Hour)})
	}
	complete(t, s, "w1", results...)

	cases := []struct {
		name string
		f    queue.Filter
		want []string
	}{
		{"status", queue.Filter{Status: queue.StatusDelivered}, []string{m3}},
		{"status none", queue.Filter{Status: queue.StatusQueued}, nil},
		{"recipient", queue.Filter{Recipient: "one.test"}, []string{m2, m1}},
		{"recipient any case", queue.Filter{Recipient: "Z@ONE"}, []string{m2}},
		{"from", queue.Filter{From: "alice"}, []string{m3, m1}},
		{"subject", queue.Filter{Subject: "invoice"}, []string{m1}},
		{"subject wildcard is literal", queue.Filter{Subject: "%"}, nil},
		{"since", queue.Filter{Since: mid}, []string{m3, m2}},
		{"until", queue.Filter{Until: mid}, []string{m1}},
		{"combined", queue.Filter{From: "alice", Status: queue.StatusDeferred}, []string{m1}},
	}
	for _, tc := range cases {
		if got := pageIDs(list(t, s, tc.f)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: List = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Paging within a filter.
	p := list(t, s, queue.Filter{Recipient: "one.test", Limit: 1})
	if !slices.Equal(pageIDs(p), []string{m2}) || p.Next == "" {
		t.Fatalf("first filtered page %v next %q", pageIDs(p), p.Next)
	}
	p = list(t, s, queue.Filter{Recipient: "one.test", Limit: 1, Cursor: p.Next})
	if !slices.Equal(pageIDs(p), []string{m1}) || p.Next != "" {
		t.Fatalf("second filtered page %v next %q", pageIDs(p), p.Next)
	}
}

func testCounts(t *testing.T, s queue.Store) {
	a := enqueue(t, s, newMsg("a@x.test"))
	b := enqueue(t, s, newMsg("b@x.test"))
	c := enqueue(t, s, newMsg("c@x.test"))
	hold := func(id string) { // claim id alone, giving the others back
		for _, cl := range claim(t, s, "w1", 10, time.Minute) {
			if cl.ID != id {
				if err := s.Release(context.Background(), "w1", []string{cl.ID}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	hold(a)
	complete(t, s, "w1", queue.Result{MessageID: a, Recipients: []queue.RecipientResult{{Address: "a@x.test", Status: queue.RecipientDelivered}}})
	hold(b)
	if err := s.Cancel(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[queue.Status]int64{queue.StatusDelivered: 1, queue.StatusSending: 1, queue.StatusCancelled: 1}
	for _, st := range []queue.Status{queue.StatusQueued, queue.StatusSending, queue.StatusDeferred,
		queue.StatusDelivered, queue.StatusPartial, queue.StatusFailed, queue.StatusCancelled} {
		if got[st] != want[st] {
			t.Errorf("Counts[%s] = %d, want %d", st, got[st], want[st])
		}
	}
}

// deliverWith claims id and completes it with one status per recipient.
func deliverWith(t *testing.T, s queue.Store, id string, sts ...queue.RecipientStatus) {
	t.Helper()
	c := claimOne(t, s, "w1", id, time.Minute)
	res := queue.Result{MessageID: id, NextAttemptAt: time.Now().Add(time.Hour)}
	for i, r := range c.Recipients {
		res.Recipients = append(res.Recipients, queue.RecipientResult{Address: r.Address, Status: sts[i]})
	}
	if errs := complete(t, s, "w1", res); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

func testRetry(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("b@example.com"))
	deliverWith(t, s, id, queue.RecipientDeferred)
	if c := claim(t, s, "w1", 10, time.Minute); len(c) != 0 {
		t.Fatalf("deferred message claimed early: %v", ids(c))
	}
	if err := s.Retry(ctx, id); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	m := wantStatus(t, s, id, queue.StatusDeferred)
	if m.NextAttemptAt.After(time.Now().Add(2 * time.Millisecond)) {
		t.Errorf("retried message due %v, want now", m.NextAttemptAt)
	}
	claimOne(t, s, "w1", id, time.Minute)
	if err := s.Retry(ctx, id); !errors.Is(err, queue.ErrSending) {
		t.Errorf("Retry while sending: %v, want ErrSending", err)
	}
	complete(t, s, "w1", queue.Result{MessageID: id, Recipients: []queue.RecipientResult{{Address: "b@example.com", Status: queue.RecipientDelivered}}})
	for _, inc := range []bool{false, true} {
		if err := retryOrRequeue(s, id, inc); !errors.Is(err, queue.ErrFinal) {
			t.Errorf("Retry(delivered, requeue %v): %v, want ErrFinal", inc, err)
		}
	}
	wantStatus(t, s, id, queue.StatusDelivered)
}

func testRetryIncludeFailed(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("a@x.test", "b@x.test"))
	deliverWith(t, s, id, queue.RecipientDelivered, queue.RecipientFailed)
	wantStatus(t, s, id, queue.StatusPartial)
	if err := s.Retry(ctx, id); !errors.Is(err, queue.ErrFinal) {
		t.Errorf("Retry(partial) without failed: %v, want ErrFinal", err)
	}
	if err := s.Requeue(ctx, id); err != nil {
		t.Fatalf("Retry(partial, includeFailed): %v", err)
	}
	m := wantStatus(t, s, id, queue.StatusDeferred)
	if r := recipient(t, m, "b@x.test"); r.Status != queue.RecipientPending {
		t.Errorf("requeued recipient is %s, want pending", r.Status)
	}
	if r := recipient(t, m, "a@x.test"); r.Status != queue.RecipientDelivered {
		t.Errorf("delivered recipient became %s", r.Status)
	}
	c := claimOne(t, s, "w1", id, time.Minute)
	if len(c.Recipients) != 1 || c.Recipients[0].Address != "b@x.test" {
		t.Fatalf("claimed recipients %+v, want only b@x.test", c.Recipients)
	}
	complete(t, s, "w1", queue.Result{MessageID: id, Recipients: []queue.RecipientResult{
		{Address: "b@x.test", Status: queue.RecipientDelivered}}})
	wantStatus(t, s, id, queue.StatusDelivered)
	// A wholly failed message comes back queued.
	id2 := enqueue(t, s, newMsg("c@x.test"))
	deliverWith(t, s, id2, queue.RecipientFailed)
	wantStatus(t, s, id2, queue.StatusFailed)
	if err := s.Requeue(ctx, id2); err != nil {
		t.Fatal(err)
	}
	m = wantStatus(t, s, id2, queue.StatusQueued)
	if !m.ExpiresAt.After(time.Now()) {
		t.Errorf("requeued message expires %v, in the past", m.ExpiresAt)
	}
}

func testCancel(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("a@x.test", "b@x.test"))
	deliverWith(t, s, id, queue.RecipientDelivered, queue.RecipientDeferred)
	if err := s.Cancel(ctx, id); err != nil {
		t.Fatalf("Cancel(deferred): %v", err)
	}
	m := wantStatus(t, s, id, queue.StatusCancelled)
	if !m.NextAttemptAt.IsZero() {
		t.Errorf("cancelled message next due %v", m.NextAttemptAt)
	}
	if a, b := recipient(t, m, "a@x.test"), recipient(t, m, "b@x.test"); a.Status != queue.RecipientDelivered || b.Status != queue.RecipientFailed {
		t.Errorf("after cancel recipients are %s and %s, want delivered and failed", a.Status, b.Status)
	}
	if err := s.Cancel(ctx, id); !errors.Is(err, queue.ErrFinal) {
		t.Errorf("second Cancel: %v, want ErrFinal", err)
	}
	for _, inc := range []bool{false, true} {
		if err := retryOrRequeue(s, id, inc); !errors.Is(err, queue.ErrFinal) {
			t.Errorf("Retry(cancelled, requeue %v): %v, want ErrFinal", inc, err)
		}
	}
	queued := enqueue(t, s, newMsg("c@x.test"))
	if err := s.Cancel(ctx, queued); err != nil {
		t.Fatalf("Cancel(queued): %v", err)
	}
	wantStatus(t, s, queued, queue.StatusCancelled)
	if c := claim(t, s, "w1", 10, time.Minute); len(c) != 0 {
		t.Errorf("claimed cancelled messages %v", ids(c))
	}
	delivered := enqueue(t, s, newMsg("d@x.test"))
	deliverWith(t, s, delivered, queue.RecipientDelivered)
	if err := s.Cancel(ctx, delivered); !errors.Is(err, queue.ErrFinal) {
		t.Errorf("Cancel(delivered): %v, want ErrFinal", err)
	}
	wantStatus(t, s, delivered, queue.StatusDelivered)
}

func testCancelWhileSending(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := enqueue(t, s, newMsg("b@example.com"))
	claimOne(t, s, "w1", id, time.Hour)
	if err := s.Cancel(ctx, id); !errors.Is(err, queue.ErrSending) {
		t.Fatalf("Cancel under a live lease: %v, want ErrSending", err)
	}
	errs := complete(t, s, "w1", queue.Result{MessageID: id, Recipients: []queue.RecipientResult{
		{Address: "b@example.com", Status: queue.RecipientDelivered, Code: 250}}})
	if errs[0] != nil {
		t.Fatalf("the attempt's result after a refused Cancel: %v", errs[0])
	}
	if r := wantStatus(t, s, id, queue.StatusDelivered).Recipients[0]; r.Code != 250 {
		t.Errorf("delivered recipient lost its reply: %+v", r)
	}

	// A worker that died leaves an expired lease: that message cancels,
	// and the worker's late result changes nothing.
	dead := enqueue(t, s, newMsg("c@example.com"))
	claimOne(t, s, "crashed", dead, expired)
	if err := s.Cancel(ctx, dead); err != nil {
		t.Fatalf("Cancel after the lease lapsed: %v", err)
	}
	errs = complete(t, s, "crashed", queue.Result{MessageID: dead, Recipients: []queue.RecipientResult{
		{Address: "c@example.com", Status: queue.RecipientDelivered, Code: 250}}})
	if !errors.Is(errs[0], queue.ErrLeaseLost) {
		t.Errorf("Complete after Cancel: %v, want ErrLeaseLost", errs[0])
	}
	if err := s.Release(ctx, "crashed", []string{dead}); err != nil {
		t.Fatal(err)
	}
	m := wantStatus(t, s, dead, queue.StatusCancelled)
	if r := m.Recipients[0]; r.Status != queue.RecipientFailed || r.Code == 250 {
		t.Errorf("recipient after cancel and late Complete = %+v, want failed", r)
	}
	if c := claim(t, s, "w2", 10, expired); len(c) != 0 {
		t.Errorf("claimed cancelled message %v", ids(c))
	}
}

// retryOrRequeue is Requeue when requeue is set, else Retry.
func retryOrRequeue(s queue.Store, id string, requeue bool) error {
	if requeue {
		return s.Requeue(context.Background(), id)
	}
	return s.Retry(context.Background(), id)
}
