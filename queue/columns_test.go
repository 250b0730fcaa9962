package queue

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestColumnTextRoundTrip(t *testing.T) {
	for _, tags := range []map[string]string{nil, {}, {"plan": "pro", "k,ey": "v\"al,ue"}} {
		s, err := TagsText(tags)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseTags("m1", s)
		if err != nil || !maps.Equal(got, tags) || (len(tags) == 0 && s != "{}") {
			t.Errorf("tags %v stored as %q read back as %v, %v", tags, s, got, err)
		}
	}
	if _, err := ParseTags("m1", "{broken"); err == nil || !strings.Contains(err.Error(), "message m1: tags") {
		t.Errorf("broken tags: %v, want an error naming the message", err)
	}
	for _, words := range [][]string{nil, {"date"}, {"date", "message-id", "header-block"}} {
		if got := ParseList(ListText(words)); !slices.Equal(got, words) {
			t.Errorf("list %q read back as %q", words, got)
		}
	}
}
