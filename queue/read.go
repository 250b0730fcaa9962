package queue

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// Page size bounds of listings.
const (
	// DefaultLimit is the page size when a filter asks for none.
	DefaultLimit = 50
	// MaxLimit bounds a page, whatever the filter asks for.
	MaxLimit = 1000
)

func pageLimit(n int) int {
	if n <= 0 {
		n = DefaultLimit
	}
	return min(n, MaxLimit)
}

// encodeCursor makes an opaque cursor of the last key of a page.
func encodeCursor(parts ...string) string {
	s := parts[0]
	for _, p := range parts[1:] {
		s += "\x00" + p
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// decodeCursor is encodeCursor's inverse; false when malformed.
func decodeCursor(c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}

// Get returns a message with all its recipients, read from one snapshot.
func (q *Queue[TTx]) Get(ctx context.Context, id string) (*Message, error) {
	if !storable(id) {
		return nil, firstErr(q.check(), ErrNotFound)
	}
	var m *Message
	err := q.read(ctx, "get", func(tx Tx) error {
		var err error
		if m, err = tx.Message(ctx, id); err != nil {
			return err
		}
		rcpts, err := tx.Recipients(ctx, []string{id}, false)
		m.Recipients = rcpts[id]
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// firstErr is a if set, else b.
func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Attempts returns a message's attempts, oldest first; ErrNotFound if the
// message does not exist.
func (q *Queue[TTx]) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	return ofMessage(ctx, q, "attempts", id, Tx.Attempts)
}

// History returns a message's recipient events (bounces, delays,
// complaints), oldest first; ErrNotFound if the message does not exist.
func (q *Queue[TTx]) History(ctx context.Context, id string) ([]RecipientEvent, error) {
	return ofMessage(ctx, q, "history", id, Tx.History)
}

// ofMessage reads what read gives of message id, in one snapshot with the
// check that the message exists.
func ofMessage[TTx, T any](ctx context.Context, q *Queue[TTx], op, id string,
	read func(Tx, context.Context, string) ([]T, error)) ([]T, error) {
	if !storable(id) {
		return nil, firstErr(q.check(), ErrNotFound)
	}
	var out []T
	err := q.read(ctx, op, func(tx Tx) error {
		if _, err := tx.BodySize(ctx, id); err != nil {
			return err
		}
		var err error
		out, err = read(tx, ctx, id)
		return err
	})
	return out, err
}

// List returns messages matching f, newest first. The cursor is the last
// id of the previous page: ids are UUIDv7, so id order is creation order
// and paging by "id < cursor" never skips or repeats a message.
func (q *Queue[TTx]) List(ctx context.Context, f Filter) (*ListPage, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, fmt.Errorf("%s: %w: Status: unknown status %q", q.name, ErrInvalid, f.Status)
	}
	for field, v := range map[string]string{"Recipient": f.Recipient, "From": f.From, "Subject": f.Subject} {
		if err := checkText(field, v, false); err != nil {
			return nil, fmt.Errorf("%s: %w", q.name, err)
		}
	}
	if err := checkSearch(f); err != nil {
		return nil, fmt.Errorf("%s: %w", q.name, err)
	}
	if f.Search != "" && q.opts.Search == SearchOff {
		return nil, fmt.Errorf("%s: %w: Search: the search index is off (--search off)", q.name, ErrInvalid)
	}
	var before string
	if f.Cursor != "" {
		var ok bool
		before, ok = decodeCursor(f.Cursor)
		if !ok || !storable(before) {
			return nil, fmt.Errorf("%s: %w: Cursor: malformed cursor", q.name, ErrInvalid)
		}
	}
	limit := pageLimit(f.Limit)
	page := &ListPage{}
	err := q.read(ctx, "list", func(tx Tx) error {
		msgs, err := tx.List(ctx, f, before, limit+1)
		if err != nil {
			return err
		}
		if len(msgs) > limit {
			msgs = msgs[:limit]
			page.Next = encodeCursor(msgs[limit-1].ID)
		}
		page.Messages = msgs
		ids := make([]string, len(msgs))
		for i := range msgs {
			ids[i] = msgs[i].ID
		}
		rcpts, err := tx.Recipients(ctx, ids, false)
		for i := range msgs {
			msgs[i].Recipients = rcpts[msgs[i].ID]
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// Counts returns the number of messages in each status present.
func (q *Queue[TTx]) Counts(ctx context.Context) (map[Status]int64, error) {
	var out map[Status]int64
	err := q.read(ctx, "counts", func(tx Tx) error {
		var err error
		out, err = tx.Counts(ctx)
		return err
	})
	return out, err
}

// OpenBody streams a message's body, fetching one chunk at a time so that
// memory stays at one chunk whatever the body's size and no connection is
// held between reads.
func (q *Queue[TTx]) OpenBody(ctx context.Context, id string) (io.ReadCloser, error) {
	if !storable(id) {
		return nil, firstErr(q.check(), ErrNotFound)
	}
	var size int64
	err := q.read(ctx, "open body", func(tx Tx) error {
		var err error
		size, err = tx.BodySize(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &bodyReader[TTx]{q: q, ctx: ctx, id: id, size: size}, nil
}

// bodyReader reads a body's chunks in order.
type bodyReader[TTx any] struct {
	q      *Queue[TTx]
	ctx    context.Context
	id     string
	size   int64
	read   int64
	seq    int
	buf    []byte // the chunk buffer, reused for every chunk
	cur    []byte // what is left of the current chunk
	closed bool
}

// Read implements io.Reader.
func (b *bodyReader[TTx]) Read(p []byte) (int, error) {
	if b.closed {
		return 0, fmt.Errorf("%s: read of closed body", b.q.name)
	}
	for len(b.cur) == 0 {
		if b.read >= b.size {
			return 0, io.EOF
		}
		err := b.q.read(b.ctx, "read body", func(tx Tx) error {
			var err error
			b.buf, err = tx.Chunk(b.ctx, b.id, b.seq, b.buf[:0])
			b.cur = b.buf
			return err
		})
		if errors.Is(err, ErrNotFound) {
			return 0, fmt.Errorf("%s: body of %s ends at %d of %d bytes: %w", b.q.name, b.id, b.read, b.size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, err
		}
		b.seq++
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	b.read += int64(n)
	return n, nil
}

// Close implements io.Closer.
func (b *bodyReader[TTx]) Close() error {
	b.closed, b.cur, b.buf = true, nil, nil
	return nil
}
