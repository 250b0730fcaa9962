package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// checkpointGap is the least time between two background checkpoints, so a
// busy queue checkpoints a few times a second rather than after every
// commit.
const checkpointGap = 200 * time.Millisecond

// The writer connection runs with wal_autocheckpoint=0: SQLite would
// otherwise copy the WAL into the database, and fsync it, inside whichever
// commit crossed the threshold, stalling every enqueue of that batch for
// tens of milliseconds. Instead this goroutine checkpoints on its own
// connection after writes. A PASSIVE checkpoint never blocks the writer or
// readers; WAL frames already copied are reused once the checkpoint has
// caught up.
func (d *sqliteDriver) checkpointer() {
	defer d.ckDone.Done()
	for {
		select {
		case <-d.ckStop:
			return
		case <-d.ckWake:
		}
		if _, err := d.ckdb.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			d.log.Warn("sqlite: background checkpoint failed", "err", err)
		}
		select {
		case <-d.ckStop:
			return
		case <-time.After(checkpointGap):
		}
	}
}

// wrote wakes the checkpointer without ever blocking the writer.
func (d *sqliteDriver) wrote() {
	select {
	case d.ckWake <- struct{}{}:
	default:
	}
}

// finalCheckpoint folds the whole WAL into the database at Close, so a
// closed store is a single file.
func (d *sqliteDriver) finalCheckpoint() error {
	_, err := d.ckdb.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// beginRelaxed starts a write transaction whose commit skips the fsync, for
// claims: losing a claim in a power failure only makes its message due
// again, which at-least-once delivery allows, and the next durable commit
// (WAL frames are synced in order) makes it durable anyway. The caller must
// call done after the transaction ends; it restores synchronous=FULL, or
// discards the connection when it cannot, so an enqueue never commits
// without fsync.
func (d *sqliteDriver) beginRelaxed(ctx context.Context) (*sql.Tx, func(), error) {
	conn, err := d.wdb.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	discard := func() { discardConn(conn) }
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=NORMAL"); err != nil {
		discard()
		return nil, nil, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		discard()
		return nil, nil, err
	}
	done := func() {
		if _, err := conn.ExecContext(context.Background(), "PRAGMA synchronous=FULL"); err != nil {
			discard()
			return
		}
		conn.Close()
	}
	return tx, done, nil
}
