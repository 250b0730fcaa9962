package sqlite

import (
	"context"
	"strings"
	"sync"
)

// Set-based statements bind their rows as the parameters of a VALUES list
// (or of an IN list) instead of decoding them from JSON: SQLite then does
// no parsing per row, which made JSON the larger part of recording a
// batch. A list has a power-of-two number of rows, so a handful of
// statements — each prepared once per connection — serve every batch
// size. Padding rows are all NULL; every statement skips rows whose first
// column is NULL (NULL equals nothing, and inserts filter it out).

// maxListRows bounds the rows of one statement (SQLite allows 32,766
// parameters); longer batches are split.
const maxListRows = 256

var listCache sync.Map // listKey → SQL text

type listKey struct{ rows, cols int }

// bucket rounds n up to a power of two.
func bucket(n int) int {
	b := 1
	for b < n {
		b <<= 1
	}
	return b
}

// valuesList is "(?,?),(?,?)…": rows rows of cols anonymous parameters.
func valuesList(rows, cols int) string {
	k := listKey{rows, cols}
	if s, ok := listCache.Load(k); ok {
		return s.(string)
	}
	one := "(" + strings.Repeat("?,", cols-1) + "?)"
	s := strings.Repeat(one+",", rows-1) + one
	listCache.Store(k, s)
	return s
}

// inList is "?,?,…" for an IN list of n parameters.
func inList(n int) string { return valuesList(1, n)[1 : 2*n] }

// chunks calls fn for each run of at most maxListRows of n rows.
func chunks(n int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += maxListRows {
		if err := fn(lo, min(lo+maxListRows, n)); err != nil {
			return err
		}
	}
	return nil
}

// execRows runs a set-based statement over rows in chunks: build gets the
// VALUES list for the chunk (its rows padded to a power of two), lead
// are the statement's own parameters (?1…, which its text must name
// before the list), and row(i) appends row i's cols values to args.
func (t *sqlTx) execRows(ctx context.Context, n, cols int, lead []any, build func(values string) string,
	row func(args []any, i int) []any) error {
	return chunks(n, func(lo, hi int) error {
		rows := bucket(hi - lo)
		args := make([]any, 0, len(lead)+rows*cols)
		args = append(args, lead...)
		for i := lo; i < hi; i++ {
			args = row(args, i)
		}
		for range (rows - (hi - lo)) * cols {
			args = append(args, nil)
		}
		_, err := t.exec(ctx, build(valuesList(rows, cols)), args...)
		return err
	})
}

// inArgs returns lead followed by ids[lo:hi] padded with NULLs to a power
// of two, and the IN list for them.
func inArgs(lead []any, ids []string) ([]any, string) {
	n := bucket(len(ids))
	args := make([]any, 0, len(lead)+n)
	args = append(args, lead...)
	for _, id := range ids {
		args = append(args, id)
	}
	for range n - len(ids) {
		args = append(args, nil)
	}
	return args, inList(n)
}
