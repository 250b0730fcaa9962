package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

// A path with the characters a SQLite URI gives meaning to (? # %) and a
// space names exactly that file.
func TestOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	path := filepath.Join(dir, "q.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Enqueue(context.Background(), queue.NewMessage{From: "a@x.test", Recipients: []string{"b@x.test"},
		Body: strings.NewReader("Subject: x\r\n\r\nx\r\n")})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("the database is not at %q: %v", path, err)
	}
}
