package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// checkText vets one text field the queue will store, naming it in the
// error: no NUL byte and valid UTF-8 (no database column of either driver
// holds otherwise), and no CR or LF where noLines says a line end would
// break an SMTP command or a header.
func checkText(field, v string, noLines bool) error {
	switch {
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, field)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	case noLines && strings.ContainsAny(v, "\r\n"):
		return fmt.Errorf("%w: %s contains CR or LF", ErrInvalid, field)
	}
	return nil
}

// storable reports whether id could name a stored row: an id from a URL
// with bytes no database stores is simply not found.
func storable(id string) bool { return checkText("id", id, true) == nil }

// clean makes text from a remote server storable: one odd byte in a reply
// must not sink a whole batch of results.
func clean(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// notifyKeywords are RFC 3461's NOTIFY values.
var notifyKeywords = map[string]bool{"SUCCESS": true, "FAILURE": true, "DELAY": true, "NEVER": true}

// validate rejects what the queue cannot accept, naming the field.
func validate(m *NewMessage, now time.Time) error {
	if err := checkText("From", m.From, true); err != nil {
		return err
	}
	if len(m.Recipients) == 0 {
		return fmt.Errorf("%w: Recipients is empty; at least one is required", ErrInvalid)
	}
	for i, r := range m.Recipients {
		if strings.TrimSpace(r) == "" {
			return fmt.Errorf("%w: Recipients[%d] is empty", ErrInvalid, i)
		}
		if err := checkText(fmt.Sprintf("Recipients[%d]", i), r, true); err != nil {
			return err
		}
	}
	if err := validateDSN(m); err != nil {
		return err
	}
	if err := errors.Join(checkText("Subject", m.Subject, false),
		checkText("IdempotencyKey", m.IdempotencyKey, true)); err != nil {
		return err
	}
	for k, v := range m.Tags {
		if err := errors.Join(checkText("Tags key", k, false), checkText("Tags["+k+"]", v, false)); err != nil {
			return err
		}
	}
	for i, r := range m.Repairs {
		if r == "" || strings.ContainsAny(r, ", ") {
			return fmt.Errorf("%w: Repairs[%d] %q must be one word", ErrInvalid, i, r)
		}
		if err := checkText(fmt.Sprintf("Repairs[%d]", i), r, true); err != nil {
			return err
		}
	}
	if m.Source != "" && !m.Source.Valid() {
		return fmt.Errorf("%w: Source %q is not one of library, api, smtp, cli", ErrInvalid, m.Source)
	}
	if m.Body == nil {
		return fmt.Errorf("%w: Body is nil", ErrInvalid)
	}
	if !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(now) {
		return fmt.Errorf("%w: ExpiresAt is in the past", ErrInvalid)
	}
	return nil
}

func validateDSN(m *NewMessage) error {
	switch m.DSN.Return {
	case "", DSNReturnFull, DSNReturnHeaders:
	default:
		return fmt.Errorf("%w: DSN.Return %q is not FULL or HDRS", ErrInvalid, m.DSN.Return)
	}
	if err := checkText("DSN.EnvID", m.DSN.EnvID, true); err != nil {
		return err
	}
	if len(m.RecipientDSN) != 0 && len(m.RecipientDSN) != len(m.Recipients) {
		return fmt.Errorf("%w: RecipientDSN has %d entries for %d recipients", ErrInvalid,
			len(m.RecipientDSN), len(m.Recipients))
	}
	for i, d := range m.RecipientDSN {
		for _, k := range d.Notify {
			if !notifyKeywords[strings.ToUpper(k)] {
				return fmt.Errorf("%w: RecipientDSN[%d].Notify %q is not SUCCESS, FAILURE, DELAY or NEVER", ErrInvalid, i, k)
			}
		}
		if err := checkText(fmt.Sprintf("RecipientDSN[%d].ORcpt", i), d.ORcpt, true); err != nil {
			return err
		}
	}
	return nil
}

// pending is a validated message on its way to the writer, its body
// spooled, and what the writer's commit made of it.
type pending struct {
	id      string
	msg     NewMessage // Body is nil: read it with body
	created time.Time
	expires time.Time
	size    int64

	mem      []byte   // the body, when it fit in one chunk
	file     *os.File // the spooled body otherwise
	unlinked bool

	// owner and lease ask for the message written leased to owner.
	owner string
	lease time.Duration
	// Set by the commit that holds it.
	claimed *Claimed
}

// prepare validates m and gives it its id, times and defaults.
func (q *Queue[TTx]) prepare(m NewMessage) (*pending, error) {
	// Stored times have millisecond precision; so has what Claimed says.
	now := time.UnixMilli(time.Now().UnixMilli())
	if err := validate(&m, now); err != nil {
		return nil, err
	}
	if m.Source == "" {
		m.Source = SourceLibrary
	}
	// UUIDv7: ids sort in creation order, which List's cursor relies on.
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("%s: new id: %w", q.name, err)
	}
	p := &pending{id: id.String(), msg: m, created: now, expires: m.ExpiresAt}
	if p.expires.IsZero() {
		// The lifetime runs from the first attempt: a message scheduled for
		// next week still gets its whole lifetime then.
		p.expires = later(now, m.SendAt).Add(q.opts.Lifetime)
	}
	p.msg.Body = nil
	return p, nil
}

// accept is the producer's side of an enqueue: it prepares m and spools
// its body, so that what reaches the writer is ready to insert. A context
// ended while the body was read stops the enqueue before the hand-off.
func (q *Queue[TTx]) accept(ctx context.Context, m NewMessage) (*pending, error) {
	p, err := q.prepare(m)
	if err != nil {
		return nil, err
	}
	body := &bodyScan{r: m.Body}
	if err := q.spool(p, body); err != nil {
		p.discard()
		return nil, err
	}
	// A body with 8-bit bytes is an 8-bit body, whatever its producer
	// said (a raw upload says nothing): it must go out with BODY=8BITMIME,
	// or be downgraded for a server without it (RFC 6152). One with a
	// line over 998 octets is re-encoded on its way out.
	p.msg.EightBit = p.msg.EightBit || body.highBit
	p.msg.LongLines = p.msg.LongLines || body.longLine
	if body.longLine && m.CheckLongLines != nil {
		if err := q.checkLongLines(p, m.CheckLongLines); err != nil {
			p.discard()
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		p.discard()
		return nil, err
	}
	return p, nil
}

// checkLongLines runs check over p's spooled body.
func (q *Queue[TTx]) checkLongLines(p *pending, check func(io.Reader) error) error {
	body, err := p.body()
	if err == nil {
		err = check(body)
	}
	return err
}

// maxLine is the longest line RFC 5322 §2.1.1 allows, without its CRLF.
const maxLine = 998

// bodyScan notes, as a body streams through, whether any byte has the
// high bit set and whether any line is longer than maxLine octets (its
// CRLF or bare LF not counted).
type bodyScan struct {
	r                 io.Reader
	highBit, longLine bool
	line              int  // octets of the current line so far, a CR included
	lastCR            bool // the last octet read was a CR
}

func (s *bodyScan) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	chunk := b[:n]
	if !s.highBit {
		var or byte
		for _, c := range chunk {
			or |= c
		}
		s.highBit = or >= 0x80
	}
	for !s.longLine && len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			s.line += len(chunk)
			s.lastCR = chunk[len(chunk)-1] == '\r'
			s.longLine = s.line > maxLine+1 // one more may be the CR of its CRLF
			break
		}
		end := s.line + i // the line before its LF
		if i > 0 && chunk[i-1] == '\r' || i == 0 && s.lastCR {
			end--
		}
		s.longLine = end > maxLine
		s.line, s.lastCR, chunk = 0, false, chunk[i+1:]
	}
	if err == io.EOF && !s.longLine {
		last := s.line // a last line without its line ending
		if s.lastCR {
			last--
		}
		s.longLine = last > maxLine
	}
	return n, err
}

// spool reads body before the writer sees the message, so a slow producer
// never holds the writer: in memory when it fits one chunk, else in an
// unlinked temporary file (a crash leaves nothing behind). The spool needs
// no fsync: durability comes from the commit that copies it.
func (q *Queue[TTx]) spool(p *pending, body io.Reader) error {
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, body, int64(q.opts.ChunkSize)+1)
	if errors.Is(err, io.EOF) {
		p.mem, p.size = buf.Bytes(), n
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: enqueue: read body: %w", q.name, err)
	}
	f, err := os.CreateTemp(q.opts.SpoolDir, "outbox-body-*")
	if err != nil {
		return fmt.Errorf("%s: enqueue: spool body: %w", q.name, err)
	}
	p.file = f
	// Unlinked while open: where the system refuses, discard removes it.
	p.unlinked = os.Remove(f.Name()) == nil
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("%s: enqueue: spool body: %w", q.name, err)
	}
	rest, err := io.Copy(f, body)
	if err != nil {
		return fmt.Errorf("%s: enqueue: read body: %w", q.name, err)
	}
	p.size = n + rest
	return nil
}

// body returns a reader over the spooled body from its start; a failed
// batch retried message by message reads it again.
func (p *pending) body() (io.Reader, error) {
	if p.file == nil {
		return bytes.NewReader(p.mem), nil
	}
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return p.file, nil
}

// discard closes and removes the spool file, if any; idempotent.
func (p *pending) discard() {
	if p.file != nil {
		p.file.Close()
		if !p.unlinked {
			os.Remove(p.file.Name())
		}
		p.file = nil
	}
}

// senderDomain is the domain of an envelope sender, lower-cased; "" for
// the null sender.
func senderDomain(from string) string {
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		return strings.ToLower(from[i+1:])
	}
	return ""
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
