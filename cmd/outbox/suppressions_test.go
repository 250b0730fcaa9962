package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/queue"
)

// TestSuppressionsCLI: add (with scope, reason and expiry), list as a
// table and as JSON, remove, against a real API; mistakes exit non-zero
// with one line on stderr and change nothing.
func TestSuppressionsCLI(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	code, out, errOut := runOutbox(t, "suppressions", "add", "Gone@Dest.test", "--reason", "asked by phone")
	if code != 0 || errOut != "" || !strings.Contains(out, "suppressed gone@dest.test") {
		t.Fatalf("add: exit %d %q %q", code, out, errOut)
	}
	code, out, errOut = runOutbox(t, "suppressions", "add", "--scope", "shop.test", "--expires", "48h", "news@dest.test")
	if code != 0 || !strings.Contains(out, "for mail from shop.test until") {
		t.Fatalf("add --scope --expires: exit %d %q %q", code, out, errOut)
	}
	s, err := d.store.LookupSuppression(ctx, "news@dest.test", "shop.test")
	if err != nil || s.ExpiresAt.Before(time.Now().Add(47*time.Hour)) || s.Cause != queue.CauseManual {
		t.Fatalf("stored: %+v, %v", s, err)
	}
	code, out, _ = runOutbox(t, "suppressions", "list")
	if code != 0 || !strings.HasPrefix(out, "ADDRESS") || !strings.Contains(out, "gone@dest.test") || !strings.Contains(out, "asked by phone") ||
		!strings.Contains(out, "shop.test") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	code, out, _ = runOutbox(t, "suppressions", "list", "--json", "--address", "gone")
	var page api.SuppressionPage
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Suppressions) != 1 {
		t.Fatalf("list --json --address: exit %d %v\n%s", code, err, out)
	}
	for _, args := range [][]string{{"suppressions", "add"}, {"suppressions", "add", "not an address"},
		{"suppressions", "add", "x@dest.test", "--expires", "soon"}, {"suppressions", "remove", "nobody@dest.test"},
		{"suppressions", "frobnicate"}} {
		code, _, errOut := runOutbox(t, args...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if _, err := d.store.LookupSuppression(ctx, "x@dest.test", ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a refused add stored an entry: %v", err)
	}
	code, out, errOut = runOutbox(t, "suppressions", "remove", "gone@dest.test")
	if code != 0 || !strings.Contains(out, "removed gone@dest.test") {
		t.Fatalf("remove: exit %d %q %q", code, out, errOut)
	}
	if code, _, _ := runOutbox(t, "suppressions", "remove", "news@dest.test", "--scope", "shop.test"); code != 0 {
		t.Errorf("remove --scope: exit %d", code)
	}
	code, out, _ = runOutbox(t, "suppressions", "list")
	if code != 0 || !strings.Contains(out, "(no entries)") {
		t.Errorf("after removing both: exit %d\n%s", code, out)
	}
}
