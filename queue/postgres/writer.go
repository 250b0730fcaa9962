package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/queue/internal/pending"
)

// insertBatch inserts every message of batch in one committed transaction.
// Every message row goes out in one pgx batch (one round trip), with its
// recipients and, for bodies that fit one chunk, its body; larger bodies
// are then streamed chunk by chunk from their spool files, and keys found
// taken are resolved in a second batch.
// It runs on the writer goroutine only, which alone uses s.buf.
func (s *Store) insertBatch(ctx context.Context, batch []*pending.Message) ([]string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer rollback(tx)
	var b pgx.Batch
	for _, p := range batch {
		inline, ok := p.Inline()
		if !ok {
			inline = nil
		}
		b.Queue(insertSQL, insertArgs(p, inline)...)
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
	for i, p := range batch {
		if _, inline := p.Inline(); !inserted[i] || inline {
			continue
		}
		if err := streamSpool(ctx, tx, p, s.buf); err != nil {
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
func resolveKeys(ctx context.Context, tx pgx.Tx, batch []*pending.Message, ids []string, inserted []bool) error {
	var b pgx.Batch
	var idx []int
	for i, ok := range inserted {
		if !ok {
			b.Queue(existingSQL, batch[i].Msg.IdempotencyKey)
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
func streamSpool(ctx context.Context, tx pgx.Tx, p *pending.Message, buf []byte) error {
	body, err := p.Body()
	if err != nil {
		return err
	}
	n, err := writeChunks(ctx, tx, p.ID, 0, body, buf)
	if err != nil {
		return err
	}
	if n != p.Size {
		return fmt.Errorf("body changed while stored: %d bytes, expected %d", n, p.Size)
	}
	return nil
}
