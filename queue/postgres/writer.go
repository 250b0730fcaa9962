package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// writer is the group-commit loop: it takes every enqueue waiting, up to the
// batch bounds, commits them in one transaction and answers them all.
func (s *Store) writer() {
	defer s.writerW.Done()
	buf := make([]byte, s.opts.ChunkSize)
	prev := 0
	for req := range s.reqs {
		batch := s.gather(req, prev)
		s.commitBatch(batch, buf)
		prev = len(batch)
	}
}

// maxLinger bounds how long the writer waits for producers it expects.
const maxLinger = time.Millisecond

// gather collects a batch starting with first. The producers answered by
// the last commit come back a moment later with their next message; taking
// only what is already queued would split them over two commits, so while
// the batch is smaller than the last one the writer lingers briefly for
// them. With one producer it never waits.
func (s *Store) gather(first *enqueueReq, prev int) []*enqueueReq {
	batch := []*enqueueReq{first}
	size := first.p.size
	var linger <-chan time.Time
	for len(batch) < s.opts.BatchMessages && size < s.opts.BatchBytes {
		var r *enqueueReq
		var ok bool
		select {
		case r, ok = <-s.reqs:
		default:
			if len(batch) >= prev {
				return batch
			}
			if linger == nil {
				linger = time.After(maxLinger)
			}
			select {
			case r, ok = <-s.reqs:
			case <-linger:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = append(batch, r)
		size += r.p.size
	}
	return batch
}

// commitBatch writes batch in one transaction. If that fails, each message
// is retried in a transaction of its own so one bad message cannot sink the
// others.
func (s *Store) commitBatch(batch []*enqueueReq, buf []byte) {
	// Not the producers' contexts: a message handed to the writer is
	// committed or refused on its merits, never half-way by a cancel.
	ctx := context.Background()
	ids, err := s.insertBatch(ctx, batch, buf)
	if err != nil && len(batch) > 1 {
		s.log.Warn("postgres: group commit failed; retrying messages one by one",
			"messages", len(batch), "err", err)
		for _, r := range batch {
			one, err := s.insertBatch(ctx, []*enqueueReq{r}, buf)
			r.p.discard()
			if err != nil {
				r.done <- enqueueResult{err: s.wrap("enqueue", err)}
				continue
			}
			r.done <- enqueueResult{id: one[0]}
		}
		return
	}
	for i, r := range batch {
		r.p.discard()
		if err != nil {
			r.done <- enqueueResult{err: s.wrap("enqueue", err)}
			continue
		}
		r.done <- enqueueResult{id: ids[i]}
	}
}

// insertBatch inserts every message of batch in one committed transaction.
// Every message row goes out in one pgx batch (one round trip), with its
// recipients and, for bodies that fit one chunk, its body; larger bodies
// are then streamed chunk by chunk from their spool files, and keys found
// taken are resolved in a second batch.
func (s *Store) insertBatch(ctx context.Context, batch []*enqueueReq, buf []byte) ([]string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer rollback(tx)
	var b pgx.Batch
	for _, r := range batch {
		inline := r.p.mem
		if r.p.file != nil {
			inline = nil
		}
		b.Queue(insertSQL, insertArgs(r.p, inline)...)
	}
	b.Queue(notifySQL)
	ids := make([]string, len(batch))
	inserted := make([]bool, len(batch))
	br := tx.SendBatch(ctx, &b)
	for i := range batch {
		err := br.QueryRow().Scan(&ids[i])
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			br.Close()
			return nil, err
		}
		inserted[i] = err == nil
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	if err := resolveKeys(ctx, tx, batch, ids, inserted); err != nil {
		return nil, err
	}
	for i, r := range batch {
		if !inserted[i] || r.p.file == nil {
			continue
		}
		if err := streamSpool(ctx, tx, r.p, buf); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	s.commits.Add(1)
	s.committed.Add(int64(len(batch)))
	return ids, nil
}

// resolveKeys fills in the ids of messages whose idempotency key was
// already taken, by a committed message or an earlier one of this batch.
func resolveKeys(ctx context.Context, tx pgx.Tx, batch []*enqueueReq, ids []string, inserted []bool) error {
	var b pgx.Batch
	var idx []int
	for i, ok := range inserted {
		if !ok {
			b.Queue(existingSQL, batch[i].p.m.IdempotencyKey)
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, &b)
	defer br.Close()
	for _, i := range idx {
		if err := br.QueryRow().Scan(&ids[i]); err != nil {
			return fmt.Errorf("find idempotency key: %w", err)
		}
	}
	return br.Close()
}

// streamSpool copies a spooled body into the database chunk by chunk.
func streamSpool(ctx context.Context, tx pgx.Tx, p *pending, buf []byte) error {
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	n, err := writeChunks(ctx, tx, p.id, 0, p.file, buf)
	if err != nil {
		return err
	}
	if n != p.size {
		return fmt.Errorf("body changed while stored: %d bytes, expected %d", n, p.size)
	}
	return nil
}
