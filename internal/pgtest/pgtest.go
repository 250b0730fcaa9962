// Package pgtest gives tests a PostgreSQL schema of their own on the server
// named by OUTBOX_TEST_POSTGRES: skipped with a clear message on a machine
// without it, a failure in CI.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outbox-mail/outbox/internal/testenv"
)

// EnvDSN names the variable holding the test server's DSN.
const EnvDSN = "OUTBOX_TEST_POSTGRES"

// BaseDSN returns the test server's DSN. Without one the test is skipped,
// except in CI (CI set), where a missing or unreachable server is a
// failure: a store whose tests silently never run is not tested.
func BaseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	ci := testenv.InCI()
	if dsn == "" {
		if ci {
			t.Fatalf("%s is not set in CI; the PostgreSQL store tests must run there", EnvDSN)
		}
		t.Skipf("set %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL store tests", EnvDSN)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if ci {
			t.Fatalf("PostgreSQL at %s is unreachable: %v", EnvDSN, err)
		}
		t.Skipf("PostgreSQL at %s is unreachable: %v", EnvDSN, err)
	}
	conn.Close(ctx)
	return dsn
}

// withParam adds a runtime parameter to a DSN in URL or key=value form.
func withParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvDSN, err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// FreshSchema creates an empty schema of its own for one test, dropped
// when the test ends, and returns a DSN whose connections use it (and are
// named after it, so a test can find its own backends).
func FreshSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	base := BaseDSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema = "test_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	dsn = withParam(t, base, "search_path", schema)
	return withParam(t, dsn, "application_name", schema), schema
}
