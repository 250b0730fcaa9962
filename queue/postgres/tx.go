package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outbox-mail/outbox/queue"
)

// pgTx is a queue.Tx that pipelines: statements without results wait in
// pending and go out with the next statement that has them, or with the
// commit, in one round trip. An error in a queued statement aborts the
// transaction, and surfaces there.
type pgTx struct {
	conn     *pgxpool.Conn // the store's own connection; nil in an application's tx
	ex       executor
	pending  pgx.Batch
	begun    bool // something has been sent
	commit   string
	rollback []string
	finished bool
}

// queue adds a statement without results to the pipeline.
func (t *pgTx) queue(sql string, args ...any) {
	t.pending.Queue(sql, args...)
}

// send sends what is pending with last (if any) and returns the results
// of last, after checking those of everything before it; done must be
// called once they are read.
func (t *pgTx) send(ctx context.Context, last string, args ...any) (pgx.BatchResults, error) {
	b := t.pending
	t.pending = pgx.Batch{}
	n := b.Len()
	if last != "" {
		b.Queue(last, args...)
	}
	t.begun = true
	br := t.ex.SendBatch(ctx, &b)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, err
		}
	}
	return br, nil
}

// exec runs sql at once, with what is pending, and reports rows affected.
func (t *pgTx) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	br, err := t.send(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag.RowsAffected(), err
}

// rows runs a query at once, with what is pending, and calls fn for each
// row.
func (t *pgTx) rows(ctx context.Context, fn func(pgx.Rows) error, sql string, args ...any) error {
	br, err := t.send(ctx, sql, args...)
	if err != nil {
		return err
	}
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			if err = fn(rows); err != nil {
				break
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// row runs a query for one row; none is queue.ErrNotFound.
func (t *pgTx) row(ctx context.Context, dst []any, sql string, args ...any) error {
	found := false
	err := t.rows(ctx, func(r pgx.Rows) error {
		found = true
		return r.Scan(dst...)
	}, sql, args...)
	if err == nil && !found {
		err = queue.ErrNotFound
	}
	return err
}

// Commit sends what is pending with the COMMIT (or RELEASE), in one round
// trip.
func (t *pgTx) Commit(ctx context.Context) error {
	if t.finished {
		return errors.New("postgres: transaction already finished")
	}
	_, err := t.exec(ctx, t.commit)
	if err != nil {
		t.Rollback(ctx)
		return err
	}
	t.finished = true
	t.release()
	return nil
}

// Rollback undoes the transaction (or what followed the savepoint); a
// no-op once finished.
func (t *pgTx) Rollback(ctx context.Context) error {
	if t.finished {
		return nil
	}
	t.finished = true
	t.pending = pgx.Batch{}
	var err error
	if t.begun {
		for _, sql := range t.rollback {
			if _, e := t.ex.Exec(context.Background(), sql); e != nil && err == nil {
				err = e
			}
		}
	}
	if err != nil && t.conn != nil {
		// A connection in an unknown state must not serve anyone else.
		t.conn.Conn().Close(context.Background())
	}
	t.release()
	return err
}

func (t *pgTx) release() {
	if t.conn != nil {
		t.conn.Release()
		t.conn = nil
	}
}
