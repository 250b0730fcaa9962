package queuetest

import (
	"context"
	"errors"
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

// runSearchModes: the headers mode indexes subject, addresses, display
// names and attachment names but not the text body; off indexes nothing
// and refuses a search (and IndexPending) with a sentence naming the
// setting, while every other listing works.
func runSearchModes[TTx any](t *testing.T, h Harness[TTx]) {
	if h.OpenWith == nil {
		t.Fatal("the harness has no OpenWith")
	}
	ctx := context.Background()
	t.Run("headers", func(t *testing.T) {
		s := h.OpenWith(t, queue.Options{Search: queue.SearchHeaders})
		id := enqueue(t, s, mimeMsg("Your order", searchPlain))
		if ix, ok := s.(indexer); !ok {
			t.Fatalf("%T has no IndexPending", s)
		} else if _, err := ix.IndexPending(ctx); err != nil {
			t.Fatal(err)
		}
		for _, word := range []string{"order", "builder", "invoice"} { // subject, display name, attachment
			waitSearch(t, s, queue.Filter{Search: word}, id)
		}
		if got := searchIDs(t, s, queue.Filter{Search: "parcel"}); len(got) != 0 {
			t.Errorf("a word of the text body found %v with the headers mode", got)
		}
	})
	t.Run("off", func(t *testing.T) {
		s := h.OpenWith(t, queue.Options{Search: queue.SearchOff})
		id := enqueue(t, s, mimeMsg("Your order", searchPlain))
		if _, err := s.List(ctx, queue.Filter{Search: "order"}); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("a search with the index off: %v, want ErrInvalid", err)
		}
		if ix, ok := s.(indexer); ok {
			if _, err := ix.IndexPending(ctx); !errors.Is(err, queue.ErrInvalid) {
				t.Errorf("IndexPending with the index off: %v, want ErrInvalid", err)
			}
		}
		page, err := s.List(ctx, queue.Filter{Subject: "order"})
		if err != nil || len(page.Messages) != 1 || page.Messages[0].ID != id {
			t.Errorf("a listing by subject with the index off: %+v, %v", page, err)
		}
	})
	if _, err := queue.ParseSearchMode("everything"); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("ParseSearchMode(everything): %v, want ErrInvalid", err)
	}
}
