// Package pending prepares a message for a queue store's writer: it
// validates a queue.NewMessage, gives it its id and tags JSON, and spools
// its body before the writer sees it, so that a slow producer never holds
// the writer (the SQLite write lock, a PostgreSQL batch) while it reads.
//
// SQL stays in the stores; what differs between them (how strict their text
// columns are, where spool files go) is passed in a Config.
package pending

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/outbox-mail/outbox/queue"
)

// TextCheck vets one text field a store will hold and names it in the
// error it returns; noLines is set where a CR or LF would break a header.
type TextCheck func(field, v string, noLines bool) error

// LinesOnly is the TextCheck of stores whose text columns hold any bytes:
// it rejects only line ends where lines matter.
func LinesOnly(field, v string, noLines bool) error {
	if noLines && strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("%w: %s contains CR or LF", queue.ErrInvalid, field)
	}
	return nil
}

// Config is what differs between the stores.
type Config struct {
	// Name prefixes errors ("sqlite").
	Name string
	// Text vets the message's text fields (nil: LinesOnly).
	Text TextCheck
	// ChunkSize is the largest body kept in memory; larger ones are
	// spooled to a file.
	ChunkSize int
	// Dir and Pattern place spool files (as os.CreateTemp takes them).
	Dir, Pattern string
	// Unlink removes a spool file's name as soon as it is created, for a
	// directory the store cannot sweep at start, or one another process
	// may sweep while this one spools into it.
	Unlink bool
}

// Message is a validated message ready for insertion, its body spooled.
type Message struct {
	ID      string
	Msg     queue.NewMessage // Body is nil: read it with Body
	Created time.Time        // when it was validated
	// Lifetime applies when Msg.ExpiresAt is zero.
	Lifetime time.Duration
	Tags     string // Msg.Tags as JSON, "{}" when there are none
	// Size is the body's length once spooled; a store may set it below
	// zero to mean "learn it from the body as it streams".
	Size int64

	mem      []byte   // the body, when it fit in one chunk
	file     *os.File // the spooled body otherwise
	unlinked bool     // file's name was removed at creation
}

// Validate rejects what no store can accept, naming the field; text says
// what the store's text columns cannot hold (nil: LinesOnly).
func Validate(m queue.NewMessage, now time.Time, text TextCheck) error {
	if text == nil {
		text = LinesOnly
	}
	if err := text("From", m.From, true); err != nil {
		return err
	}
	if len(m.Recipients) == 0 {
		return fmt.Errorf("%w: Recipients is empty; at least one is required", queue.ErrInvalid)
	}
	for i, r := range m.Recipients {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("%w: Recipients[%d] is empty", queue.ErrInvalid, i)
		}
		if err := text(fmt.Sprintf("Recipients[%d]", i), r, true); err != nil {
			return err
		}
	}
	if err := text("Subject", m.Subject, false); err != nil {
		return err
	}
	if err := text("IdempotencyKey", m.IdempotencyKey, false); err != nil {
		return err
	}
	for k, v := range m.Tags {
		if err := errors.Join(text("Tags key", k, false), text("Tags["+k+"]", v, false)); err != nil {
			return err
		}
	}
	if m.Body == nil {
		return fmt.Errorf("%w: Body is nil", queue.ErrInvalid)
	}
	if !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(now) {
		return fmt.Errorf("%w: ExpiresAt is in the past", queue.ErrInvalid)
	}
	return nil
}

// Prepare validates m and fills in the id and the tags JSON; lifetime
// applies when m has no ExpiresAt. The body is not read: see Spool.
func (c Config) Prepare(m queue.NewMessage, lifetime time.Duration) (*Message, error) {
	now := time.Now()
	if err := Validate(m, now, c.Text); err != nil {
		return nil, err
	}
	tags := "{}"
	if len(m.Tags) > 0 {
		b, err := json.Marshal(m.Tags)
		if err != nil {
			return nil, fmt.Errorf("%w: Tags: %v", queue.ErrInvalid, err)
		}
		tags = string(b)
	}
	// UUIDv7: ids sort in creation order, which List's cursor relies on.
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("%s: new id: %w", c.Name, err)
	}
	p := &Message{ID: id.String(), Msg: m, Created: now, Lifetime: lifetime, Tags: tags}
	p.Msg.Body = nil
	return p, nil
}

// Accept is the producer's side of an enqueue: it prepares m and spools
// its body, so that what reaches the writer is ready to insert. A context
// ended while the body was read stops the enqueue here, before the
// hand-off; on any error nothing is left behind.
func (c Config) Accept(ctx context.Context, m queue.NewMessage, lifetime time.Duration) (*Message, error) {
	p, err := c.Prepare(m, lifetime)
	if err != nil {
		return nil, err
	}
	if err := c.Spool(p, m.Body); err != nil {
		p.Discard()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		p.Discard()
		return nil, err
	}
	return p, nil
}

// Spool reads body before the writer sees the message, so a slow producer
// never holds the writer: in memory when it fits one chunk, else in a
// temporary file. The spool needs no fsync; durability comes from the
// commit that copies it into the database. On error the caller still owns
// p and must Discard it.
func (c Config) Spool(p *Message, body io.Reader) error {
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, body, int64(c.ChunkSize)+1)
	if errors.Is(err, io.EOF) {
		p.mem, p.Size = buf.Bytes(), n
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: enqueue: read body: %w", c.Name, err)
	}
	f, err := os.CreateTemp(c.Dir, c.Pattern)
	if err != nil {
		return fmt.Errorf("%s: enqueue: spool body: %w", c.Name, err)
	}
	p.file = f
	if c.Unlink {
		// The spool directory may be shared (the system temp directory, or
		// the database's spool that another process sweeps at its Open).
		// Unlinking the file now, while it stays open,
		// means a crash leaves nothing behind; where the system refuses to
		// remove an open file, Discard removes it instead.
		p.unlinked = os.Remove(f.Name()) == nil
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("%s: enqueue: spool body: %w", c.Name, err)
	}
	rest, err := io.Copy(f, body)
	if err != nil {
		return fmt.Errorf("%s: enqueue: read body: %w", c.Name, err)
	}
	p.Size = n + rest
	return nil
}

// Inline is the body when it was kept in memory, for stores that write a
// small body with its row; false when it went to a spool file.
func (p *Message) Inline() ([]byte, bool) {
	return p.mem, p.file == nil
}

// Body returns a reader over the spooled body from its start; the writer
// may need it twice when a failed batch is retried message by message.
func (p *Message) Body() (io.Reader, error) {
	if p.file == nil {
		return bytes.NewReader(p.mem), nil
	}
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return p.file, nil
}

// Discard closes and removes the spool file, if any. It may be called more
// than once.
func (p *Message) Discard() {
	if p.file != nil {
		p.file.Close()
		if !p.unlinked {
			os.Remove(p.file.Name())
		}
		p.file = nil
	}
}

// IDFloor is the smallest id a message created at t or later can have:
// ids are UUIDv7, whose text starts with the creation time in unix
// milliseconds as lowercase hex, so a primary-key range finds a time
// window without an index on the creation time.
func IDFloor(t time.Time) string {
	ms := uint64(t.UnixMilli())
	return fmt.Sprintf("%08x-%04x", ms>>16, ms&0xffff)
}
