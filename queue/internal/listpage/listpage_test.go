package listpage

import (
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

func TestLimit(t *testing.T) {
	for n, want := range map[int]int{-1: DefaultLimit, 0: DefaultLimit, 1: 1, 200: 200, MaxLimit + 1: MaxLimit} {
		if got := Limit(n); got != want {
			t.Errorf("Limit(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestCutAndAfter(t *testing.T) {
	msgs := []queue.Message{{ID: "c"}, {ID: "b"}, {ID: "a"}}
	if page := Cut(msgs, 3); len(page.Messages) != 3 || page.Next != "" {
		t.Errorf("last page = %d messages, next %q; want 3 and no cursor", len(page.Messages), page.Next)
	}
	page := Cut(msgs, 2)
	if len(page.Messages) != 2 || page.Next == "" {
		t.Fatalf("first page = %d messages, next %q; want 2 and a cursor", len(page.Messages), page.Next)
	}
	if last, ok := After(page.Next); !ok || last != "b" {
		t.Errorf("After(next) = %q, %v; want the page's last id b", last, ok)
	}
	for _, bad := range []string{"", "!!", "a=="} {
		if last, ok := After(bad); ok {
			t.Errorf("After(%q) = %q, accepted", bad, last)
		}
	}
}
