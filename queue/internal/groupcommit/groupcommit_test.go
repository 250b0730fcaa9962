package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a fake store: it records every Commit's batch and every
// Release, can hold a commit until told, and fails any batch holding a
// negative item.
type recorder struct {
	mu       sync.Mutex
	batches  [][]int
	released []int
	gate     chan struct{} // when set, the first Commit waits for it
	entered  chan struct{} // closed when the first Commit has begun
}

func newRecorder(gated bool) *recorder {
	r := &recorder{entered: make(chan struct{})}
	if gated {
		r.gate = make(chan struct{})
	}
	return r
}

// open lets the held commit go on; it may be called more than once.
func (r *recorder) open() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.gate:
	default:
		close(r.gate)
	}
}

func (r *recorder) commit(_ context.Context, batch []int) ([]string, error) {
	r.mu.Lock()
	first := len(r.batches) == 0
	r.batches = append(r.batches, slices.Clone(batch))
	r.mu.Unlock()
	if first {
		close(r.entered)
		if r.gate != nil {
			<-r.gate
		}
	}
	ids := make([]string, len(batch))
	for i, v := range batch {
		if v < 0 {
			return nil, fmt.Errorf("item %d is bad", v)
		}
		ids[i] = fmt.Sprint("id", v)
	}
	return ids, nil
}

func (r *recorder) release(v int) {
	r.mu.Lock()
	r.released = append(r.released, v)
	r.mu.Unlock()
}

// errClosed is what Submit returns after Close.
var errClosed = errors.New("closed")

func (r *recorder) start(t *testing.T, maxItems int, maxBytes int64) *Writer[int] {
	w := Start(Config[int]{
		MaxItems: maxItems, MaxBytes: maxBytes,
		Size:    func(v int) int64 { return int64(max(v, 1)) },
		Commit:  r.commit,
		Release: r.release,
		Wrap:    func(err error) error { return fmt.Errorf("wrapped: %w", err) },
		Name:    "test",
		Closed:  errClosed,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	// Opening the gate first means a failed test does not leave Close
	// waiting for a held commit.
	t.Cleanup(func() { r.open(); w.Close() })
	return w
}

type answer struct {
	item int
	id   string
	err  error
}

// submit submits v and returns a channel that yields its answer.
func submit(w *Writer[int], v int) <-chan answer {
	out := make(chan answer, 1)
	go func() {
		id, err := w.Submit(v)
		out <- answer{v, id, err}
	}()
	return out
}

// submitAll submits items concurrently, while the writer is held in a
// commit, and once its queue holds them all returns a channel that yields
// their answers.
func submitAll(t *testing.T, w *Writer[int], items ...int) <-chan answer {
	t.Helper()
	out := make(chan answer, len(items))
	for _, v := range items {
		go func() {
			id, err := w.Submit(v)
			out <- answer{v, id, err}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	// A queue smaller than items holds what fits; the rest wait to send.
	for len(w.reqs) < min(len(items), cap(w.reqs)) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d submits queued", len(w.reqs), len(items))
		}
		time.Sleep(time.Millisecond)
	}
	return out
}

func collect(t *testing.T, ch <-chan answer, n int) map[int]answer {
	t.Helper()
	got := make(map[int]answer)
	for range n {
		select {
		case a := <-ch:
			got[a.item] = a
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d answers", len(got), n)
		}
	}
	return got
}

// TestBatches: what queues up while a commit runs goes into the next
// commit together, cut at MaxItems.
func TestBatches(t *testing.T) {
	r := newRecorder(true)
	w := r.start(t, 3, 1<<20)
	first := submit(w, 100)
	<-r.entered
	rest := submitAll(t, w, 1, 2, 3, 4, 5)
	r.open()
	got := collect(t, first, 1)
	for k, v := range collect(t, rest, 5) {
		got[k] = v
	}
	for _, v := range []int{100, 1, 2, 3, 4, 5} {
		if a := got[v]; a.err != nil || a.id != fmt.Sprint("id", v) {
			t.Errorf("item %d answered %q, %v", v, a.id, a.err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sizes := []int{}
	for _, b := range r.batches {
		sizes = append(sizes, len(b))
	}
	if !slices.Equal(sizes, []int{1, 3, 2}) {
		t.Errorf("batch sizes %v, want [1 3 2]", sizes)
	}
	if len(r.released) != 6 {
		t.Errorf("%d releases, want 6", len(r.released))
	}
}

// TestMaxBytes: a batch closes once its items' sizes reach MaxBytes.
func TestMaxBytes(t *testing.T) {
	r := newRecorder(true)
	w := r.start(t, 100, 10)
	first := submit(w, 1)
	<-r.entered
	rest := submitAll(t, w, 6, 7, 8)
	r.open()
	collect(t, first, 1)
	collect(t, rest, 3)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.batches) != 3 || len(r.batches[1]) != 2 || len(r.batches[2]) != 1 {
		t.Errorf("batches %v, want [1] then two items (13 bytes reach 10) then one", r.batches)
	}
}

// TestRetryOneByOne: a failed batch is retried item by item, so only the
// bad item fails, with its error wrapped; every item is released once.
func TestRetryOneByOne(t *testing.T) {
	r := newRecorder(true)
	w := r.start(t, 10, 1<<20)
	first := submit(w, 100)
	<-r.entered
	rest := submitAll(t, w, 1, -1, 2)
	r.open()
	collect(t, first, 1)
	got := collect(t, rest, 3)
	for _, v := range []int{1, 2} {
		if a := got[v]; a.err != nil || a.id != fmt.Sprint("id", v) {
			t.Errorf("good item %d of a failed batch answered %q, %v", v, a.id, a.err)
		}
	}
	if a := got[-1]; a.err == nil || a.err.Error() != "wrapped: item -1 is bad" {
		t.Errorf("bad item answered %q, %v; want the wrapped commit error", a.id, a.err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// The first commit, the failed batch of three, then three alone.
	if len(r.batches) != 5 || len(r.batches[1]) != 3 {
		t.Errorf("batches %v, want [100], the three, then each alone", r.batches)
	}
	slices.Sort(r.released)
	if !slices.Equal(r.released, []int{-1, 1, 2, 100}) {
		t.Errorf("released %v, want each item once", r.released)
	}
}

// TestCloseDrains: Close waits for the writer to commit and answer all it
// was handed; a Submit after Close gets errClosed and its item is
// released without a commit.
func TestCloseDrains(t *testing.T) {
	r := newRecorder(true)
	w := r.start(t, 2, 1<<20)
	first := submit(w, 100)
	<-r.entered
	rest := submitAll(t, w, 1, 2, 3)
	closed := make(chan struct{})
	go func() {
		w.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a commit was running")
	case <-time.After(20 * time.Millisecond):
	}
	r.open()
	<-closed
	collect(t, first, 1)
	for v, a := range collect(t, rest, 3) {
		if a.err != nil {
			t.Errorf("item %d handed over before Close failed: %v", v, a.err)
		}
	}
	if _, err := w.Submit(7); !errors.Is(err, errClosed) {
		t.Errorf("Submit after Close = %v, want ErrClosed", err)
	}
	w.Close() // a second Close is harmless
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.released, 7) || len(r.released) != 5 {
		t.Errorf("released %v, want all five items, 7 among them", r.released)
	}
	for _, b := range r.batches {
		if slices.Contains(b, 7) {
			t.Error("an item submitted after Close was committed")
		}
	}
}

// TestLingers: after a batch of several, the writer waits up to MaxLinger
// for the producers it answered to come back rather than commit one
// message alone at once.
func TestLingers(t *testing.T) {
	r := newRecorder(true)
	w := r.start(t, 10, 1<<20)
	first := submit(w, 100)
	<-r.entered
	rest := submitAll(t, w, 1, 2, 3)
	r.open()
	collect(t, first, 1)
	collect(t, rest, 3)
	// The last batch held three, so a lone message now waits out the
	// linger before it is committed alone.
	start := time.Now()
	if _, err := w.Submit(4); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < MaxLinger {
		t.Errorf("lone message after a batch of three committed after %v, want at least the %v linger", d, MaxLinger)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if last := r.batches[len(r.batches)-1]; !slices.Equal(last, []int{4}) {
		t.Errorf("last batch %v, want [4]", last)
	}
}
