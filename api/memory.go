package api

import (
	"bytes"
	"errors"
	"net/http"
	"sync"
)

// requestBase is what every request with a body is charged on admission:
// its read buffer and bookkeeping.
const requestBase = 64 << 10

// chargeStep is how much a growing buffer is charged at a time.
const chargeStep = 32 << 10

// errBusy is the answer when the bytes in flight would pass the budget.
var errBusy = &apiError{Status: http.StatusServiceUnavailable, RetryAfter: 1,
	Msg: "The server is handling as much request data as it may hold; try again in a moment."}

// budget bounds the memory that requests being decoded hold at once: a
// request is charged for what it keeps in memory (the JSON of its fields,
// the start of each attachment) as it arrives, and one that would pass the
// limit is answered 503 with Retry-After, so many large requests at once
// cannot take the daemon's memory. Attachment content beyond its first
// 64 KiB goes to temporary files and is not charged.
//
// So that many large requests at once do not each take a slice of the
// budget and all fail together, the oldest request waits for room while
// younger ones that do not fit are refused and give theirs back: the
// oldest always gets through unless it alone is larger than the budget.
type budget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	limit  int64
	used   int64
	active []*grant // in order of admission
}

// grant is one request's share of the budget.
type grant struct {
	b *budget
	n int64
}

func newBudget(limit int64) *budget {
	b := &budget{limit: limit}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// admit charges a new request its base, or returns errBusy.
func (b *budget) admit() (*grant, error) {
	g := &grant{b: b}
	b.mu.Lock()
	if b.used+requestBase > b.limit {
		b.mu.Unlock()
		return nil, errBusy
	}
	b.used += requestBase
	g.n = requestBase
	b.active = append(b.active, g)
	b.mu.Unlock()
	return g, nil
}

// take charges n more bytes: at once if they fit, after younger requests
// have given theirs back if this is the oldest, errBusy otherwise.
func (g *grant) take(n int64) error {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used+n > b.limit {
		if len(b.active) == 0 || b.active[0] != g || b.used == g.n {
			return errBusy
		}
		b.cond.Wait()
	}
	b.used += n
	g.n += n
	return nil
}

// release returns the request's share.
func (g *grant) release() {
	if g == nil {
		return
	}
	b := g.b
	b.mu.Lock()
	b.used -= g.n
	g.n = 0
	for i, a := range b.active {
		if a == g {
			b.active = append(b.active[:i], b.active[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
	b.cond.Broadcast()
}

// inFlight reports the bytes charged now (for tests and metrics).
func (b *budget) inFlight() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// memBuf is a buffer charged to a grant as it grows: each byte three
// times, for the buffer's own room to grow (up to twice its length) and
// the copy encoding/json makes when it decodes it.
type memBuf struct {
	bytes.Buffer
	g       *grant
	charged int64
}

func (m *memBuf) charge(extra int) error {
	if m.g == nil {
		return nil
	}
	for need := 3 * int64(m.Len()+extra); need > m.charged; {
		if err := m.g.take(chargeStep); err != nil {
			return err
		}
		m.charged += chargeStep
	}
	return nil
}

// Write charges, then appends.
func (m *memBuf) Write(p []byte) (int, error) {
	if err := m.charge(len(p)); err != nil {
		return 0, err
	}
	return m.Buffer.Write(p)
}

// WriteByte charges, then appends.
func (m *memBuf) WriteByte(c byte) error {
	if err := m.charge(1); err != nil {
		return err
	}
	return m.Buffer.WriteByte(c)
}

// isBusy reports an error that is the budget's refusal.
func isBusy(err error) bool { return errors.Is(err, errBusy) }
