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
func (s *Store) checkpointer() {
	defer s.ckDone.Done()
	for {
		select {
		case <-s.ckStop:
			return
		case <-s.ckWake:
		}
		if _, err := s.ckdb.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			s.log.Warn("sqlite: background checkpoint failed", "err", err)
		}
		select {
		case <-s.ckStop:
			return
		case <-time.After(checkpointGap):
		}
	}
}

// commit commits tx and tells the checkpointer the WAL has grown.
func (s *Store) commit(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return err
	}
	s.wrote()
	return nil
}

// wrote wakes the checkpointer without ever blocking the writer.
func (s *Store) wrote() {
	select {
	case s.ckWake <- struct{}{}:
	default:
	}
}

// finalCheckpoint folds the whole WAL into the database at Close, so a
// closed store is a single file.
func (s *Store) finalCheckpoint() error {
	_, err := s.ckdb.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}
