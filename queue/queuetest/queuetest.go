// Package queuetest is the test suite every queue driver must pass. A
// driver's tests call Run with a Harness that opens a fresh, empty store
// and runs transactions of an application on the store's database:
//
//	func TestSuite(t *testing.T) {
//		queuetest.Run(t, queuetest.Harness[*sql.Tx]{Open: …, Begin: …, …})
//	}
//
// Times in the suite are real; leases that must lapse are given negative
// durations so that nothing waits on a sleep.
package queuetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// Backend is a store that can also enqueue within transactions of TTx.
type Backend[TTx any] interface {
	queue.Store
	queue.TxProducer[TTx]
}

// Harness is what the suite needs of a driver.
type Harness[TTx any] struct {
	// Open returns a fresh, empty store (with default options), closed
	// when the test ends; Close may already have been called.
	Open func(t *testing.T) Backend[TTx]
	// OpenWith is Open with the queue options o, for the rules options
	// change (the search mode).
	OpenWith func(t *testing.T, o queue.Options) Backend[TTx]
	// Begin starts a transaction of the application on s's database.
	Begin func(t *testing.T, s Backend[TTx]) TTx
	// Commit and Rollback end it.
	Commit, Rollback func(tx TTx) error
	// AppWrite writes one row of the application's own in tx; AppRows
	// counts those committed. They show that tx stays usable.
	AppWrite func(t *testing.T, tx TTx)
	AppRows  func(t *testing.T, s Backend[TTx]) int
}

// Run runs the whole suite.
func Run[TTx any](t *testing.T, h Harness[TTx]) {
	tests := []struct {
		name string
		fn   func(*testing.T, queue.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"LargeBody", testLargeBody},
		{"EmptyBody", testEmptyBody},
		{"Idempotency", testIdempotency},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"ValidationStoresNothing", testValidation},
		{"BodyReadErrorStoresNothing", testBodyReadError},
		{"ScheduledNotClaimableEarly", testScheduled},
		{"ClaimLeases", testClaimLeases},
		{"ExpiredLeaseReclaimed", testExpiredLease},
		{"CompleteLeaseLost", testCompleteLeaseLost},
		{"StaleAttemptFenced", testStaleAttemptFenced},
		{"RecipientResults", testRecipientResults},
		{"FinalStatuses", testFinalStatuses},
		{"AttemptsRecorded", testAttemptsRecorded},
		{"Release", testRelease},
		{"Renew", testRenew},
		{"NextDue", testNextDue},
		{"ListPaging", testListPaging},
		{"ListFilters", testListFilters},
		{"Counts", testCounts},
		{"Retry", testRetry},
		{"Requeue", testRetryIncludeFailed},
		{"Cancel", testCancel},
		{"CancelWhileSending", testCancelWhileSending},
		{"ConcurrentClaimers", testConcurrentClaimers},
		{"UnknownID", testUnknownID},
		{"EventsWithResults", testEventsWithResults},
		{"EventsClaimAndFinish", testEventsClaimAndFinish},
		{"EventsLeaseLapses", testEventsLeaseLapses},
		{"EventTextValidated", testEventText},
		{"BadResultStatus", testBadResultStatus},
		{"TextValidated", testTextValidated},
		{"Flags", testFlags},
		{"Leased", testLeased},
		{"LeasedLapses", testLeasedLapses},
		{"LeasedNotLeased", testLeasedNotLeased},
		{"CompleteBatch", testCompleteBatch},
		{"Transcripts", testTranscripts},
		{"Suppressions", testSuppressions},
		{"SuppressedAtEnqueue", testSuppressedAtEnqueue},
		{"Bounces", testBounces},
		{"HardBounceAtRcpt", testHardBounceAtRcpt},
		{"FeedbackSuppresses", testFeedbackSuppresses},
		{"RecipientIndex", testRecipientIndex},
		{"RetryMessages", testRetryMessages},
		{"CancelMessages", testCancelMessages},
		{"SteerBatches", testSteerBatches},
		{"Delete", testDelete},
		{"Purge", testPurge},
		{"Insights", testInsights},
		{"ProbeWrite", testProbeWrite},
		{"Closed", testClosed},
		{"Search", testSearch},
		{"SearchMailboxes", testSearchMailboxes},
		{"SearchInvalid", testSearchInvalid},
		{"SearchLargeBody", testSearchLargeBody},
		{"SearchDeleted", testSearchDeleted},
		{"SearchPaging", testSearchPaging},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, h.Open(t))
		})
	}
	t.Run("SearchModes", func(t *testing.T) { runSearchModes(t, h) })
	t.Run("EnqueueTx", func(t *testing.T) { runEnqueueTx(t, h) })
	t.Run("EnqueueTxSavepoint", func(t *testing.T) { runEnqueueTxSavepoint(t, h) })
	t.Run("SearchEnqueueTx", func(t *testing.T) { runSearchEnqueueTx(t, h) })
}

// newMsg returns a message to the given recipients with a small body.
func newMsg(to ...string) queue.NewMessage {
	return queue.NewMessage{
		From:       "sender@example.com",
		Recipients: to,
		Subject:    "hello",
		Body:       strings.NewReader("Subject: hello\r\n\r\nbody\r\n"),
	}
}

func enqueue(t *testing.T, s queue.Store, m queue.NewMessage) string {
	t.Helper()
	id, err := s.Enqueue(context.Background(), m)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if id == "" {
		t.Fatal("Enqueue returned an empty id")
	}
	return id
}

func get(t *testing.T, s queue.Store, id string) *queue.Message {
	t.Helper()
	m, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return m
}

func readBody(t *testing.T, s queue.Store, id string) []byte {
	t.Helper()
	rc, err := s.OpenBody(context.Background(), id)
	if err != nil {
		t.Fatalf("OpenBody(%s): %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read body of %s: %v", id, err)
	}
	return b
}

func claim(t *testing.T, s queue.Store, owner string, limit int, lease time.Duration) []queue.Claimed {
	t.Helper()
	c, err := s.Claim(context.Background(), owner, limit, lease)
	if err != nil {
		t.Fatalf("Claim(%s): %v", owner, err)
	}
	return c
}

// claimOne claims and expects exactly the message id.
func claimOne(t *testing.T, s queue.Store, owner, id string, lease time.Duration) queue.Claimed {
	t.Helper()
	c := claim(t, s, owner, 10, lease)
	if len(c) != 1 || c[0].ID != id {
		t.Fatalf("Claim(%s) = %v, want exactly %s", owner, ids(c), id)
	}
	return c[0]
}

func complete(t *testing.T, s queue.Store, owner string, results ...queue.Result) []error {
	t.Helper()
	errs, err := s.Complete(context.Background(), owner, results)
	if err != nil {
		t.Fatalf("Complete(%s): %v", owner, err)
	}
	if len(errs) != len(results) {
		t.Fatalf("Complete returned %d errors for %d results", len(errs), len(results))
	}
	return errs
}

func ids(c []queue.Claimed) []string {
	out := make([]string, len(c))
	for i := range c {
		out[i] = c[i].ID
	}
	return out
}

func wantStatus(t *testing.T, s queue.Store, id string, want queue.Status) *queue.Message {
	t.Helper()
	m := get(t, s, id)
	if m.Status != want {
		t.Fatalf("status of %s = %s, want %s", id, m.Status, want)
	}
	return m
}

// near reports whether a and b are within the millisecond a store may
// round stored times to.
func near(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -2*time.Millisecond && d < 2*time.Millisecond
}

// recipient returns the recipient with address addr of m.
func recipient(t *testing.T, m *queue.Message, addr string) queue.Recipient {
	t.Helper()
	for _, r := range m.Recipients {
		if r.Address == addr {
			return r
		}
	}
	t.Fatalf("message %s has no recipient %s", m.ID, addr)
	return queue.Recipient{}
}

// pattern is a deterministic body generator of n bytes that never holds
// the body in memory.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n-p.off)]
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x*31 + x>>11)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// sameStream compares two readers byte by byte in blocks.
func sameStream(a, b io.Reader) (bool, error) {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		endA := errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF)
		endB := errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF)
		if ea != nil && !endA {
			return false, ea
		}
		if eb != nil && !endB {
			return false, eb
		}
		if endA || endB {
			return endA == endB, nil
		}
	}
}
