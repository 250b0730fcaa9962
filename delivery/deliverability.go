package delivery

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/outbox-mail/outbox/bounce"
	"github.com/outbox-mail/outbox/dkim"
	"github.com/outbox-mail/outbox/internal/crlf"
	"github.com/outbox-mail/outbox/message/mime7"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/unsubscribe"
)

// Deliverability is what the engine adds to the mail it sends, at the
// moment it sends it: a DKIM signature, a return path per recipient that
// names it (VERP), and one-click unsubscribe fields naming the
// recipient. The zero value adds nothing and costs nothing.
//
// The stored message is never changed: what is added goes before its
// bytes, as they stream, so every retry sends the same message with
// fresh additions, and a message of any size is signed in constant
// memory (the body is read twice: once to hash, once to send).
type Deliverability struct {
	// DKIM, when set, signs every message whose From domain (or a parent
	// of it) has a key. A message that cannot be signed (no From, two
	// From fields…) is logged and sent unsigned.
	DKIM *dkim.Signer
	// VERP, when set, sends each recipient in a transaction of its own
	// whose envelope sender is the recipient's return path
	// (bounces+TOKEN@domain), so that a bounce names exactly who failed.
	// Mail with the null sender keeps it.
	VERP *bounce.VERP
	// Unsubscribe, when set, puts List-Unsubscribe and
	// List-Unsubscribe-Post fields naming the recipient before the
	// messages that ask for them (queue.Flags.Unsubscribe), one recipient
	// per transaction, under the DKIM signature.
	Unsubscribe *UnsubscribeLinks
}

// UnsubscribeLinks makes the one-click unsubscribe links of RFC 8058.
type UnsubscribeLinks struct {
	// Tokens signs the tokens; each names the envelope sender's domain
	// and the recipient.
	Tokens *unsubscribe.Tokens
	// BaseURL is the public URL the daemon's HTTP port is reached at; a
	// link is BaseURL + "/u/" + TOKEN.
	BaseURL string
	// Mailto adds <mailto:unsubscribe+TOKEN@bounce-domain> (VERP's
	// unsubscribe address) to the field when VERP is set.
	Mailto bool
}

// perRecipient reports whether c's recipients each need a transaction
// of their own.
func (dv *Deliverability) perRecipient(c *queue.Claimed) bool {
	return dv != nil && (dv.VERP != nil && c.From != "" || dv.Unsubscribe != nil && c.Unsubscribe)
}

// sendPerRecipient delivers p one recipient at a time, each with its own
// return path and fields, and merges the outcomes. After a connection
// failure the recipients not yet tried get no reply, so they are
// deferred with its reason.
func (p *part) sendPerRecipient() Outcome {
	var out Outcome
	for i := range p.env.Recipients {
		if err := p.ctx.Err(); err != nil {
			out.Err = errors.Join(out.Err, stopped(err))
			break
		}
		env := p.env.single(i)
		idx := p.idx[i]
		if p.dv.VERP != nil && p.c.From != "" {
			if rp, err := p.dv.VERP.ReturnPath(p.c.ID, idx); err == nil {
				env.From = rp
			} else {
				p.log.Warn("no VERP return path; sending with the message's own", "id", p.c.ID, "err", err)
			}
		}
		o := p.deliver(env, p.fields(env.Recipients[0], idx))
		out.Recipients = append(out.Recipients, o.Recipients...)
		out.Err = errors.Join(out.Err, o.Err)
		out.Transcript += o.Transcript
		if out.Server == "" {
			out.Server, out.ServerAddr = o.Server, o.ServerAddr
		}
		if o.RetryAfter.After(out.RetryAfter) {
			out.RetryAfter = o.RetryAfter
		}
		if o.Err != nil && len(o.Recipients) == 0 {
			break // the session failed, not the recipient: the rest wait
		}
	}
	return out
}

// single is env for its i-th recipient alone, with its DSN parameters.
func (env *Envelope) single(i int) Envelope {
	e := *env
	e.Recipients = env.Recipients[i : i+1]
	e.Notify, e.ORcpt = nil, nil
	if i < len(env.Notify) {
		e.Notify = env.Notify[i : i+1]
	}
	if i < len(env.ORcpt) {
		e.ORcpt = env.ORcpt[i : i+1]
	}
	return e
}

// fields returns the List-Unsubscribe fields for rcpt (recipient idx) of
// the message, nil when it asks for none or none can be made.
func (p *part) fields(rcpt string, idx int) []byte {
	u := p.dv.Unsubscribe
	if u == nil || !p.c.Unsubscribe {
		return nil
	}
	domain := p.c.From[strings.LastIndexByte(p.c.From, '@')+1:]
	tok, err := u.Tokens.Token(unsubscribe.Subscription{Domain: domain, Address: rcpt, Issued: time.Now()})
	var mailto string
	if err == nil && u.Mailto && p.dv.VERP != nil {
		mailto, err = p.dv.VERP.UnsubscribeAddress(p.c.ID, idx)
	}
	var f []byte
	if err == nil {
		f, err = unsubscribe.Fields(strings.TrimRight(u.BaseURL, "/")+"/u/"+tok, mailto)
	}
	if err != nil {
		p.log.Warn("no List-Unsubscribe field for this recipient; sending without", "id", p.c.ID, "to", rcpt, "err", err)
		return nil
	}
	return f
}

// deliver sends the message to env with fields before it, signed when a
// key covers its From domain, through the part's destination.
func (p *part) deliver(env Envelope, fields []byte) Outcome {
	open := p.opener(fields)
	signing := p.dv != nil && p.dv.DKIM != nil
	if env.EightBit {
		var d downgrade
		defer d.close()
		env.Downgrade = d.hook(p, open, signing)
	}
	if !signing {
		if fields == nil && p.body != nil && !p.c.LongLines {
			return p.dest.tr.Deliver(p.ctx, env, bytes.NewReader(p.body)) // no allocation for the common case
		}
		rc, err := open()
		if err != nil {
			return Outcome{Err: err}
		}
		defer rc.Close()
		return p.dest.tr.Deliver(p.ctx, env, rc)
	}
	rc, sig, err := p.signed(open)
	if err != nil {
		return Outcome{Err: err}
	}
	defer rc.Close()
	env.Size += int64(len(fields) + len(sig))
	return p.dest.tr.Deliver(p.ctx, env, rc)
}

// downgrade is the 8-bit downgrade of one send (RFC 6152), for a server
// that turns out not to offer 8BITMIME. Unsigned mail is converted as it
// streams; signed mail is converted from the stored message and signed
// again, since a signature over the 8-bit form would not verify.
type downgrade struct{ rc io.Closer }

func (d *downgrade) hook(p *part, open func() (io.ReadCloser, error), signing bool) func(io.Reader) (io.Reader, error) {
	if !signing {
		return mime7.Downgrade
	}
	return func(io.Reader) (io.Reader, error) {
		rc, _, err := p.signed(func() (io.ReadCloser, error) {
			rc, err := open()
			if err != nil {
				return nil, err
			}
			low, err := mime7.Downgrade(rc)
			if err != nil {
				rc.Close()
				return nil, err
			}
			return readCloser{low, rc}, nil
		})
		if err != nil {
			return nil, err
		}
		d.rc = rc
		return rc, nil
	}
}

func (d *downgrade) close() {
	if d.rc != nil {
		d.rc.Close()
	}
}

// opener opens the message as it is to be sent: fields, then the stored
// body (from memory when the part holds it).
func (p *part) opener(fields []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		var rc io.ReadCloser
		if p.body != nil {
			rc = io.NopCloser(bytes.NewReader(p.body))
		} else {
			var err error
			if rc, err = p.store.OpenBody(p.ctx, p.c.ID); err != nil {
				return nil, err
			}
		}
		var r io.Reader = rc
		if p.c.LongLines {
			// Lines over 998 octets are re-encoded, whatever the server
			// (RFC 5321 §4.5.3.1.6), before anything is signed.
			lim, err := mime7.LimitLines(rc)
			if err != nil {
				rc.Close()
				return nil, err
			}
			r = lim
		}
		if len(fields) > 0 {
			r = io.MultiReader(bytes.NewReader(fields), r)
		}
		if r == io.Reader(rc) {
			return rc, nil
		}
		return readCloser{r, rc}, nil
	}
}

// signed reads the message once to sign it, then opens it again to be
// sent after the signature fields (none when no key covers its From).
// A message the signer cannot sign is logged and sent unsigned. A stored
// body is read from the store once when it can be (see replay).
func (p *part) signed(open func() (io.ReadCloser, error)) (io.ReadCloser, []byte, error) {
	if p.body == nil {
		r := &replay{open: open}
		defer r.closeFirst() // the buffer goes back when the message has been sent
		open = r.next
	}
	first, err := open()
	if err != nil {
		return nil, nil, err
	}
	sig, err := p.dv.DKIM.Sign(first)
	first.Close()
	if errors.Is(err, dkim.ErrUnsignable) {
		p.log.Warn("DKIM: message cannot be signed; sending it unsigned", "id", p.c.ID, "err", err)
		sig, err = nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	second, err := open()
	if err != nil {
		return nil, nil, err
	}
	if sig == nil {
		return second, nil, nil
	}
	// Normalised as the signer hashed it (and as the SMTP client sends it).
	return readCloser{io.MultiReader(bytes.NewReader(sig), crlf.NewReader(second)), second}, sig, nil
}

// readCloser reads r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

// replayLimit is how much of a stored body replay keeps in memory.
const replayLimit = 64 << 10

var replayBufs = sync.Pool{New: func() any { b := make([]byte, 0, replayLimit); return &b }}

// replay serves the signer's two readings of a stored body from one
// opening where it can: the bytes the first reading took are kept (up to
// replayLimit), and the second reading gets them back and then the rest
// of the same opening — all of a small message, or the header block of
// one no key covers, costs one read from the store. Past the limit the
// second reading opens the body again.
type replay struct {
	open  func() (io.ReadCloser, error)
	n     int // openings so far
	first io.ReadCloser
	buf   *[]byte
	over  bool // the first reading went past the limit
}

func (r *replay) next() (io.ReadCloser, error) {
	r.n++
	if r.n == 1 {
		rc, err := r.open()
		if err != nil {
			return nil, err
		}
		r.first, r.buf = rc, replayBufs.Get().(*[]byte)
		return recorder{r}, nil
	}
	if r.over || r.n > 2 {
		r.release()
		return r.open()
	}
	kept := bytes.NewReader(*r.buf)
	first := r.first
	r.first = nil
	return readCloser{io.MultiReader(kept, first), closeFunc(func() error {
		err := first.Close()
		r.release()
		return err
	})}, nil
}

// closeFunc is a Close method.
type closeFunc func() error

func (f closeFunc) Close() error { return f() }

// closeFirst closes the first opening if nobody reads it any more.
func (r *replay) closeFirst() {
	if r.first != nil {
		r.first.Close()
		r.first = nil
	}
}

// release gives the buffer back once the message has been sent.
func (r *replay) release() {
	r.closeFirst()
	if r.buf != nil {
		*r.buf = (*r.buf)[:0]
		replayBufs.Put(r.buf)
		r.buf = nil
	}
}

// recorder is the first reading: it keeps what it reads, and closing it
// leaves the opening open for the second reading.
type recorder struct{ r *replay }

func (w recorder) Read(p []byte) (int, error) {
	n, err := w.r.first.Read(p)
	if b := w.r.buf; !w.r.over {
		if len(*b)+n <= replayLimit {
			*b = append(*b, p[:n]...)
		} else {
			w.r.over = true
		}
	}
	return n, err
}

func (recorder) Close() error { return nil }
