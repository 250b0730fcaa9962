// Package testenv decides what a test does when the machine lacks
// something it needs (a program, a privilege, a service): on a
// developer's machine it skips, saying how to get it; in CI (the CI
// variable set, as .ci/run sets it) it fails, because CI installs
// everything and a skipped test there would hide that it never ran.
package testenv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in CI.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing ends t because what it needs is missing: a skip with the
// message, or in CI a failure with it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("in CI, where it must run: "+format, args...)
	}
	t.Skipf(format, args...)
}
