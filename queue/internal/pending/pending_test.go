package pending

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/outbox-mail/outbox/queue"
)

func msg(body string) queue.NewMessage {
	return queue.NewMessage{From: "a@x.test", Recipients: []string{"b@x.test"}, Body: strings.NewReader(body)}
}

// readTwice reads p's body twice, as a retried batch does.
func readTwice(t *testing.T, p *Message, want string) {
	t.Helper()
	for range 2 {
		r, err := p.Body()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != want {
			t.Fatalf("body = %d bytes, %v; want %d bytes", len(got), err, len(want))
		}
	}
}

func files(t *testing.T, dir string) int {
	t.Helper()
	e, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}

func TestSpoolMemory(t *testing.T) {
	c := Config{Name: "test", ChunkSize: 8, Dir: t.TempDir(), Pattern: "body-*"}
	body := "12345678" // exactly one chunk stays in memory
	p, err := c.Prepare(msg(body), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Spool(p, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if inline, ok := p.Inline(); !ok || string(inline) != body || p.Size != 8 {
		t.Errorf("Inline = %q, %v, Size %d; want the body in memory", inline, ok, p.Size)
	}
	if n := files(t, c.Dir); n != 0 {
		t.Errorf("%d spool files for a body of one chunk", n)
	}
	readTwice(t, p, body)
	p.Discard()
}

func TestSpoolFile(t *testing.T) {
	for _, unlink := range []bool{false, true} {
		c := Config{Name: "test", ChunkSize: 8, Dir: t.TempDir(), Pattern: "body-*", Unlink: unlink}
		body := strings.Repeat("x", 100)
		p, err := c.Prepare(msg(body), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Spool(p, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		if _, ok := p.Inline(); ok || p.Size != 100 {
			t.Errorf("unlink=%v: Inline ok %v, Size %d; want a spool file of 100 bytes", unlink, ok, p.Size)
		}
		want := 1
		if unlink {
			want = 0 // unlinked at once, still readable
		}
		if n := files(t, c.Dir); n != want {
			t.Errorf("unlink=%v: %d spool files, want %d", unlink, n, want)
		}
		readTwice(t, p, body)
		p.Discard()
		p.Discard()
		if n := files(t, c.Dir); n != 0 {
			t.Errorf("unlink=%v: %d spool files after Discard", unlink, n)
		}
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("broken") }

func TestSpoolFails(t *testing.T) {
	c := Config{Name: "test", ChunkSize: 8, Dir: t.TempDir(), Pattern: "body-*"}
	p, err := c.Prepare(msg(""), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Spool(p, io.MultiReader(strings.NewReader(strings.Repeat("x", 20)), failing{}))
	if err == nil || !strings.HasPrefix(err.Error(), "test: enqueue: read body: ") {
		t.Fatalf("Spool of a failing body = %v", err)
	}
	p.Discard()
	if n := files(t, c.Dir); n != 0 {
		t.Errorf("%d spool files after a failed spool was discarded", n)
	}
}

func TestPrepare(t *testing.T) {
	c := Config{Name: "test"}
	m := msg("x")
	m.Tags = map[string]string{"k": "v"}
	p, err := c.Prepare(m, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(p.ID)
	if err != nil || id.Version() != 7 {
		t.Errorf("id %q is not a UUIDv7 (%v)", p.ID, err)
	}
	if p.Tags != `{"k":"v"}` || p.Msg.Body != nil || p.Lifetime != time.Hour || p.Created.IsZero() {
		t.Errorf("Prepare = %+v", p)
	}
	if p, _ := c.Prepare(msg("x"), time.Hour); p.Tags != "{}" {
		t.Errorf("tags of a message without = %q, want {}", p.Tags)
	}
}

// strict is a TextCheck like PostgreSQL's: no NUL, valid UTF-8.
func strict(field, v string, noLines bool) error {
	if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
		return errors.New(field + " bad text")
	}
	return LinesOnly(field, v, noLines)
}

func TestValidate(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name       string
		edit       func(*queue.NewMessage)
		lax, stric string // the error's end, "" for none
	}{
		{"ok", func(*queue.NewMessage) {}, "", ""},
		{"from", func(m *queue.NewMessage) { m.From = "a\r\n@x" }, "From contains CR or LF", "From contains CR or LF"},
		{"none", func(m *queue.NewMessage) { m.Recipients = nil }, "Recipients is empty; at least one is required", "at least one is required"},
		{"blank", func(m *queue.NewMessage) { m.Recipients = []string{"b@x", " "} }, "Recipients[1] is empty", "Recipients[1] is empty"},
		{"rcpt lines", func(m *queue.NewMessage) { m.Recipients = []string{"b\n@x"} }, "Recipients[0] contains CR or LF", "Recipients[0] contains CR or LF"},
		{"subject lines", func(m *queue.NewMessage) { m.Subject = "a\nb" }, "", ""},
		{"subject NUL", func(m *queue.NewMessage) { m.Subject = "a\x00b" }, "", "Subject bad text"},
		{"key", func(m *queue.NewMessage) { m.IdempotencyKey = "\xff" }, "", "IdempotencyKey bad text"},
		{"tag", func(m *queue.NewMessage) { m.Tags = map[string]string{"k": "\x00"} }, "", "Tags[k] bad text"},
		{"body", func(m *queue.NewMessage) { m.Body = nil }, "Body is nil", "Body is nil"},
		{"expired", func(m *queue.NewMessage) { m.ExpiresAt = now }, "ExpiresAt is in the past", "ExpiresAt is in the past"},
	} {
		for _, v := range []struct {
			check TextCheck
			want  string
		}{{nil, c.lax}, {strict, c.stric}} {
			m := msg("x")
			c.edit(&m)
			err := Validate(m, now, v.check)
			switch {
			case v.want == "" && err != nil:
				t.Errorf("%s (strict %v): %v, want none", c.name, v.check != nil, err)
			case v.want != "" && (err == nil || !strings.HasSuffix(err.Error(), v.want)):
				t.Errorf("%s (strict %v): %v, want one ending %q", c.name, v.check != nil, err, v.want)
			case v.want != "" && v.check == nil && !errors.Is(err, queue.ErrInvalid):
				t.Errorf("%s: %v is not ErrInvalid", c.name, err)
			}
		}
	}
}

func TestAccept(t *testing.T) {
	c := Config{Name: "test", ChunkSize: 8, Dir: t.TempDir(), Pattern: "body-*"}
	p, err := c.Accept(context.Background(), msg(strings.Repeat("x", 20)), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	readTwice(t, p, strings.Repeat("x", 20))
	p.Discard()
	// A context ended while the body was read: refused, spool file gone.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Accept(ctx, msg(strings.Repeat("x", 20)), time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Accept with an ended context = %v, want context.Canceled", err)
	}
	m := msg("x")
	m.Recipients = nil
	if _, err := c.Accept(context.Background(), m, time.Hour); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("Accept of an invalid message = %v, want ErrInvalid", err)
	}
	if n := files(t, c.Dir); n != 0 {
		t.Errorf("%d spool files left", n)
	}
}

func TestIDFloorOrdersWithIDs(t *testing.T) {
	c := Config{Name: "test", ChunkSize: 64, Text: LinesOnly}
	before := time.Now().Add(-time.Millisecond)
	p, err := c.Prepare(queue.NewMessage{From: "a@x.test", Recipients: []string{"b@x.test"}, Body: strings.NewReader("x")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if floor := IDFloor(before); p.ID < floor {
		t.Errorf("id %s made after %v sorts before its floor %s", p.ID, before, floor)
	}
	if floor := IDFloor(time.Now().Add(time.Second)); p.ID >= floor {
		t.Errorf("id %s sorts after the floor %s of a later time", p.ID, floor)
	}
}
