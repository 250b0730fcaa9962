package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/internal/pgtest"
)

// freshSchema is pgtest.FreshSchema, short for this package's tests.
func freshSchema(t testing.TB) (dsn, schema string) { return pgtest.FreshSchema(t) }

// openStore opens a store on dsn, closed when the test ends.
func openStore(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() }) // may already be closed
	return s
}

// connect opens a plain connection on dsn for the test's own SQL.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
