package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbox-mail/outbox/queue/internal/fulltext"
	"github.com/outbox-mail/outbox/queue/internal/ids"
)

// The search index is filled off the accept path. Every message row is
// written with a "waiting to be indexed" mark (the driver does it in the
// insert itself), so nothing can be missed; the group-commit writer then
// hands what it just committed, with the bodies it held in memory, to the
// indexer goroutine, which reads their text and writes their entries in
// batches, in transactions that need no fsync (a lost one leaves the
// marks, and the messages are indexed again). A periodic scan of the marks
// picks up what no hand-off brought: mail written by EnqueueTx or by
// another node, left by a crash, or dropped when the indexer fell behind.

// Indexer settings.
const (
	// DefaultIndexInterval is how often the indexer scans for messages it
	// was not handed.
	DefaultIndexInterval = 10 * time.Second
	// indexBatch bounds the entries one index transaction writes: it holds
	// SQLite's one writer connection, which the next group commit waits
	// for (64 entries keep that wait near a millisecond).
	indexBatch = 64
	// indexGrace keeps a scan off mail committed just now, which its own
	// node's indexer was handed: two nodes of a shared database would
	// otherwise both index it.
	indexGrace = 2 * time.Second
	// indexHeld bounds the body bytes held for the indexer; past it, the
	// indexer reads bodies back from the store.
	indexHeld = 16 << 20
	// indexLinger is the least time between two index writes of fresh
	// mail under load: how late a search then finds a message, at most,
	// when the indexer keeps up.
	indexLinger = 50 * time.Millisecond
	// indexQueue bounds the batches waiting for the indexer.
	indexQueue = 64
)

// freshDoc is a just-committed message handed to the indexer.
type freshDoc struct {
	id, from, subject string
	rcpts             []string
	body              []byte // nil: read it from the store
}

// indexer is the state of the indexer goroutine.
type indexer struct {
	fresh  chan []freshDoc
	held   atomic.Int64 // bytes of body in fresh
	missed atomic.Bool  // a hand-off was dropped: scan at the next idle moment
	// lastWrite is when the indexer last wrote fresh entries; only its
	// goroutine uses it.
	lastWrite time.Time
	stop      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	done      sync.WaitGroup
}

func (q *Queue[TTx]) startIndexer() {
	ix := &q.ix
	ix.fresh, ix.stop = make(chan []freshDoc, indexQueue), make(chan struct{})
	ix.ctx, ix.cancel = context.WithCancel(context.Background())
	ix.done.Add(1)
	go q.indexLoop()
}

// stopIndexer ends the indexer goroutine; what it was not done with stays
// marked, for the next start.
func (q *Queue[TTx]) stopIndexer() {
	close(q.ix.stop)
	q.ix.cancel()
	q.ix.done.Wait()
}

// handToIndexer passes the messages of a committed batch to the indexer
// without ever waiting for it.
func (q *Queue[TTx]) handToIndexer(batch []*pending, inserted []bool) {
	if q.opts.Search == SearchOff {
		return
	}
	docs := make([]freshDoc, 0, len(batch))
	var held int64
	for i, p := range batch {
		if !inserted[i] {
			continue
		}
		d := freshDoc{id: p.id, from: p.msg.From, subject: p.msg.Subject, rcpts: p.msg.Recipients}
		if p.file == nil && q.ix.held.Load()+held+int64(len(p.mem)) <= indexHeld {
			d.body, held = p.mem, held+int64(len(p.mem))
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return
	}
	q.ix.held.Add(held)
	select {
	case q.ix.fresh <- docs:
	default:
		q.ix.held.Add(-held)
		q.ix.missed.Store(true)
	}
}

func (q *Queue[TTx]) indexLoop() {
	ix := &q.ix
	defer ix.done.Done()
	// The first scan, at once, indexes what an earlier run left marked.
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ix.stop:
			return
		case docs := <-ix.fresh:
			docs = q.moreFresh(docs)
			q.indexFresh(docs)
			if len(ix.fresh) == 0 && ix.missed.Swap(false) {
				q.indexScan(ix.ctx, 0)
			}
		case <-t.C:
			q.indexScan(ix.ctx, indexGrace)
			t.Reset(q.opts.IndexInterval)
		}
	}
}

// moreFresh adds the batches waiting behind docs and, when the last index
// write was less than indexLinger ago, those that arrive until then, up
// to one index batch: an index transaction costs much the same for a few
// entries as for dozens, so under load the indexer writes at most every
// indexLinger, while a message that comes alone is indexed at once.
func (q *Queue[TTx]) moreFresh(docs []freshDoc) []freshDoc {
	wait := time.Until(q.ix.lastWrite.Add(indexLinger))
	var linger <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		linger = t.C
	}
	for len(docs) < indexBatch {
		select {
		case more := <-q.ix.fresh:
			docs = append(docs, more...)
			continue
		default:
		}
		if linger == nil {
			return docs
		}
		select {
		case more := <-q.ix.fresh:
			docs = append(docs, more...)
		case <-linger:
			return docs
		case <-q.ix.stop:
			return docs
		}
	}
	return docs
}

func (q *Queue[TTx]) indexFresh(fresh []freshDoc) {
	docs := make([]SearchDoc, 0, len(fresh))
	var held int64
	for _, f := range fresh {
		held += int64(len(f.body))
		if d, ok := q.readDoc(q.ix.ctx, f); ok {
			docs = append(docs, d)
		}
	}
	q.ix.held.Add(-held)
	q.ix.lastWrite = time.Now()
	if err := q.writeIndex(q.ix.ctx, docs); err != nil {
		q.logIndexError(err)
	}
}

// readDoc reads one message's text; ok is false when the message is gone.
func (q *Queue[TTx]) readDoc(ctx context.Context, f freshDoc) (SearchDoc, bool) {
	var body io.Reader = bytes.NewReader(f.body)
	if f.body == nil {
		rc, err := q.OpenBody(ctx, f.id)
		if errors.Is(err, ErrNotFound) {
			return SearchDoc{}, false
		}
		if err == nil {
			defer rc.Close()
			body = rc
		}
		// An unreadable body still gets the envelope indexed, so that
		// its mark goes and no scan tries it again and again.
	}
	d := fulltext.Extract(body)
	if q.opts.Search == SearchHeaders {
		d.Text = ""
	}
	return searchDoc(f.id, f.from, f.subject, f.rcpts, d), true
}

func (q *Queue[TTx]) writeIndex(ctx context.Context, docs []SearchDoc) error {
	for len(docs) > 0 {
		n := min(len(docs), indexBatch)
		if err := q.write(ctx, "index", false, func(tx Tx) error { return tx.IndexMessages(ctx, docs[:n]) }); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}

func (q *Queue[TTx]) logIndexError(err error) {
	if !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) {
		q.log.Warn(q.name+": search index: messages stay waiting for the next scan", "err", err)
	}
}

// indexScan indexes the marked messages committed more than grace ago,
// batch by batch, and returns how many it indexed.
func (q *Queue[TTx]) indexScan(ctx context.Context, grace time.Duration) int {
	n, err := q.scanMarked(ctx, grace)
	if err != nil {
		q.logIndexError(err)
	}
	return n
}

func (q *Queue[TTx]) scanMarked(ctx context.Context, grace time.Duration) (int, error) {
	total, after := 0, ""
	below := ""
	if grace > 0 {
		below = ids.Floor(time.Now().Add(-grace))
	}
	for {
		var cands []IndexCandidate
		var rcpts map[string][]Recipient
		err := q.read(ctx, "index", func(tx Tx) error {
			var err error
			if cands, err = tx.PendingIndex(ctx, after, below, indexBatch); err != nil || len(cands) == 0 {
				return err
			}
			idList := make([]string, len(cands))
			for i, c := range cands {
				idList[i] = c.ID
			}
			rcpts, err = tx.Recipients(ctx, idList, false)
			return err
		})
		if err != nil {
			return total, err
		}
		docs := make([]SearchDoc, 0, len(cands))
		for _, c := range cands {
			var to []string
			for _, r := range rcpts[c.ID] {
				to = append(to, r.Address)
			}
			if d, ok := q.readDoc(ctx, freshDoc{id: c.ID, from: c.From, subject: c.Subject, rcpts: to}); ok {
				docs = append(docs, d)
			}
		}
		if err := q.writeIndex(ctx, docs); err != nil {
			return total, err
		}
		total += len(docs)
		if len(cands) < indexBatch {
			return total, nil
		}
		after = cands[len(cands)-1].ID
	}
}

// IndexPending indexes for search, now, every message still waiting to be
// indexed, and returns how many it indexed. The queue does this by itself
// (at once for what it accepts, every Options.IndexInterval for mail
// written by EnqueueTx or by other nodes); call it after EnqueueTx when a
// search must find the message at once.
func (q *Queue[TTx]) IndexPending(ctx context.Context) (int, error) {
	if err := q.check(); err != nil {
		return 0, err
	}
	if q.opts.Search == SearchOff {
		return 0, fmt.Errorf("%s: %w: the search index is off (--search off)", q.name, ErrInvalid)
	}
	return q.scanMarked(ctx, 0)
}
