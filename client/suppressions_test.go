package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/client"
	"github.com/outbox-mail/outbox/queue"
)

// TestSuppressions: Suppress adds entries (scoped, with a reason and an
// expiry) as the store keeps them, Suppressions pages through them and
// filters, Unsuppress removes exactly the entry named — addresses with
// characters that need escaping in a path included — and the API's
// refusals are *client.Error naming the field, having changed nothing.
func TestSuppressions(t *testing.T) {
	ctx := t.Context()
	d := start(t, false)
	c := d.client(t)
	until := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	s, err := c.Suppress(ctx, client.NewSuppression{Address: "Ann@Dest.test", Scope: "Shop.test", Reason: "asked by phone", ExpiresAt: until})
	if err != nil {
		t.Fatal(err)
	}
	if s.Address != "ann@dest.test" || s.Scope != "shop.test" || s.Reason != "asked by phone" || s.Cause != "manual" ||
		s.ExpiresAt == nil || !s.ExpiresAt.Equal(until) || s.Expired || s.CreatedAt.IsZero() {
		t.Fatalf("Suppress answered %+v", s)
	}
	stored, err := d.store.LookupSuppression(ctx, "ann@dest.test", "shop.test")
	if err != nil || stored.Reason != "asked by phone" || !stored.ExpiresAt.Equal(until) {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if _, err := d.store.LookupSuppression(ctx, "ann@dest.test", "other.test"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a scoped entry stops other senders: %v", err)
	}
	// Characters an address may hold that a path must escape.
	odd := []string{"ann%shop@dest.test", "a/b@dest.test", "what?#x@dest.test"}
	for _, a := range append([]string{"bob@dest.test"}, odd...) {
		if s, err := c.Suppress(ctx, client.NewSuppression{Address: a}); err != nil || s.Address != a || s.Scope != "" || s.ExpiresAt != nil {
			t.Fatalf("Suppress(%s) = %+v, %v", a, s, err)
		}
	}
	checkPages(t, c, []string{"a/b@dest.test", "ann%shop@dest.test", "ann@dest.test", "bob@dest.test", "what?#x@dest.test"})
	if p, err := c.Suppressions(ctx, client.SuppressionQuery{Address: "ANN"}); err != nil || len(p.Suppressions) != 2 || p.NextCursor != "" {
		t.Errorf("filtered by ANN: %+v, %v", p, err)
	}
	for _, a := range odd {
		if err := c.Unsuppress(ctx, a, ""); err != nil {
			t.Errorf("Unsuppress(%s): %v", a, err)
		}
		if _, err := d.store.LookupSuppression(ctx, a, ""); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s is still suppressed: %v", a, err)
		}
	}
	// The scoped entry is removed only with its scope.
	if err := c.Unsuppress(ctx, "ann@dest.test", ""); !client.IsNotFound(err) {
		t.Errorf("Unsuppress without the scope: %v, want not found", err)
	}
	if err := c.Unsuppress(ctx, "ANN@dest.test", "shop.test"); err != nil {
		t.Errorf("Unsuppress with the scope: %v", err)
	}
	if err := c.Unsuppress(ctx, "ann@dest.test", "shop.test"); !client.IsNotFound(err) {
		t.Errorf("Unsuppress of a removed entry: %v, want not found", err)
	}
	checkRefusals(t, d, c)
}

// checkPages lists the whole list one entry a page and wants want, in
// order.
func checkPages(t *testing.T, c *client.Client, want []string) {
	t.Helper()
	var got []string
	q := client.SuppressionQuery{Limit: 1}
	for range len(want) + 1 {
		p, err := c.Suppressions(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.Suppressions {
			got = append(got, s.Address)
		}
		if q.Cursor = p.NextCursor; q.Cursor == "" {
			break
		}
	}
	if len(got) != len(want) {
		t.Fatalf("pages of one gave %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pages of one gave %q, want %q", got, want)
		}
	}
}

// checkRefusals: what the API refuses comes back as *client.Error with
// its status and field, and stores nothing; a bad call the client can
// tell by itself is never sent.
func checkRefusals(t *testing.T, d *daemon, c *client.Client) {
	ctx := t.Context()
	before, err := d.store.Suppressions(ctx, queue.SuppressionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var e *client.Error
	for _, s := range []client.NewSuppression{{Address: "Ann <ann@dest.test>"}, {Address: ""},
		{Address: "x@dest.test", Scope: "a@b"}, {Address: "x@dest.test", ExpiresAt: time.Now().Add(-time.Hour)}} {
		_, err := c.Suppress(ctx, s)
		if !errors.As(err, &e) || e.StatusCode != 422 || e.Field == "" || e.Temporary() {
			t.Errorf("Suppress(%+v): %v, want a 422 naming the field", s, err)
		}
	}
	if _, err := c.Suppressions(ctx, client.SuppressionQuery{Limit: 5000}); !errors.As(err, &e) || e.StatusCode != 400 || e.Field != "limit" {
		t.Errorf("a limit of 5000: %v, want 400 on limit", err)
	}
	if _, err := c.Suppressions(ctx, client.SuppressionQuery{Cursor: "not-ours"}); !errors.As(err, &e) || e.StatusCode != 400 || e.Field != "cursor" {
		t.Errorf("a cursor not the server's: %v, want 400 on cursor", err)
	}
	if err := c.Unsuppress(ctx, "", ""); err == nil || client.IsNotFound(err) {
		t.Errorf("Unsuppress of no address: %v, want an error of the call", err)
	}
	after, err := d.store.Suppressions(ctx, queue.SuppressionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Suppressions) != len(before.Suppressions) {
		t.Errorf("refused calls changed the list: %d entries, then %d", len(before.Suppressions), len(after.Suppressions))
	}
	anon, _ := client.New(d.srv.URL, client.Options{})
	if _, err := anon.Suppressions(ctx, client.SuppressionQuery{}); !errors.As(err, &e) || e.StatusCode != 401 {
		t.Errorf("no token: %v, want 401", err)
	}
	d.store.Close()
	if _, err := c.Suppress(context.Background(), client.NewSuppression{Address: "y@dest.test"}); !errors.As(err, &e) || !e.Temporary() || e.RetryAfter <= 0 {
		t.Errorf("a closed store: %v, want a temporary error with Retry-After", err)
	}
}
