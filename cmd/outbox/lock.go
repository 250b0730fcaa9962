package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockSQLite takes an advisory lock on PATH.lock, beside the database, for
// the life of the process: SQLite itself would let two daemons share the
// file, each delivering the same queue with its own leases and neither
// knowing of the other. The lock goes with the process, however it ends.
// Several nodes is what PostgreSQL is for.
func lockSQLite(dbPath string) (*os.File, error) {
	lockPath := dbPath + ".lock"
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o750); err != nil {
		return nil, fmt.Errorf("--db: %w", err)
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--db: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		who := "another process"
		if b, rerr := os.ReadFile(lockPath); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				who = fmt.Sprintf("another outbox serve (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("the SQLite database %s is in use by %s (lock %s): run one outbox serve per SQLite file, "+
				"or use PostgreSQL (--db postgres://…) for several nodes", dbPath, who, lockPath)
		}
		return nil, fmt.Errorf("--db: locking %s: %w", lockPath, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}
