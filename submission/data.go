package submission

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/internal/headerblock"
	"github.com/outbox-mail/outbox/message/mime7"
	"github.com/outbox-mail/outbox/queue"
)

// headerMem is how much of a header block is kept in memory while it is
// read; the rest of a larger one goes to a temporary file (Spool), so the
// Subject and the repairs are known whatever its size.
const headerMem = 64 << 10

// readerPool recycles the buffered readers of the client's data: one
// 64 KiB allocation per message would dominate the garbage of small
// submissions.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

var errStore = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
	Message: "Temporary failure storing the message, try again later"}

// Data streams the message into the queue: a Received header, then the
// client's bytes as they arrive, with these changes. The dot-stuffing of
// lines after a bare LF is undone (unstuffLines). What an MSA adds is
// added (RFC 6409 §8): a Date and a Message-ID (on the server's host
// name) when the message has none, and the empty line that ends a header
// block when it has none, so that the Received line does not swallow its
// first line (headerblock.Repair). The header block's Bcc and Resent-Bcc
// fields are removed (the recipients they name are in the envelope
// already, from RCPT), as Postfix's cleanup removes them. A message with
// a line over 998 octets that no re-encoding could shorten (in a header)
// is refused (mime7.Check). Data answers 250 with the queue id only once
// the store reports the message durable.
func (s *session) Data(r io.Reader) error {
	tx := s.tx
	if tx == nil || len(tx.rcpts) == 0 {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}
	if tx.feedback {
		return s.reportData(r)
	}
	src := &readErr{r: r}
	var in io.Reader = src
	// go-smtp hands BDAT chunks over through an io.Pipe: they are not
	// dot-stuffed. DATA comes through its dot-decoding reader.
	if _, bdat := r.(*io.PipeReader); !bdat {
		in = unstuffLines(src)
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(in)
	defer func() { br.Reset(nil); readerPool.Put(br) }()
	trace := traceID()
	hb, err := headerblock.Spool(br, headerMem)
	if err != nil {
		return s.dataFailed(trace, src, err)
	}
	defer hb.Close()
	rep := hb.Repair(s.srv.cfg.Hostname, time.Now())
	nm := queue.NewMessage{
		From:       tx.from,
		Recipients: tx.rcpts,
		Subject:    subjectOf(hb.Subject),
		Body: io.MultiReader(strings.NewReader(s.received(trace, tx)),
			headerblock.StripBcc(rep.Apply(hb.Reader(), br))),
		CheckLongLines: mime7.Verify,
		Source:         queue.SourceSMTP,
		Flags:          queue.Flags{EightBit: tx.body8bit, SMTPUTF8: tx.utf8, DSN: tx.dsn},
		Repairs:        rep.Added,
		Tags:           s.tags(),
	}
	if slices.ContainsFunc(tx.rcptDSN, func(d queue.RecipientDSN) bool { return len(d.Notify) > 0 || d.ORcpt != "" }) {
		nm.RecipientDSN = tx.rcptDSN
	}
	id, err := s.srv.cfg.Enqueuer.EnqueueRaw(s.srv.ctx, nm)
	if err != nil {
		return s.dataFailed(trace, src, err)
	}
	s.log.Info("submission: queued", "id", id, "trace", trace,
		"recipients", len(tx.rcpts), "size", src.n, "repairs", rep.Added)
	// go-smtp writes an *SMTPError's code and text as they are, and a nil
	// error only as "250 2.0.0 OK: queued"; a 250 "error" carries the id.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: "OK: queued as " + id}
}

// dataFailed maps a failed enqueue to the reply: the client's own stream
// error (too large, connection lost) first, since the store only passes it
// on; anything else is the store's, a temporary failure so the client
// keeps the message.
func (s *session) dataFailed(trace string, src *readErr, err error) error {
	reason, reply := s.dataReply(trace, src, err)
	s.srv.rejected(reason)
	return reply
}

// dataReply is dataFailed's reply, with the reason it reports.
func (s *session) dataReply(trace string, src *readErr, err error) (string, error) {
	var unmendable *mime7.Error
	switch {
	case src.err == smtp.ErrDataTooLarge:
		s.log.Warn("submission: message too large", "trace", trace, "limit", s.srv.cfg.MaxMessageSize)
		return RejectTooLarge, smtp.ErrDataTooLarge
	case src.err == smtp.ErrTooLongLine:
		// Permanent: the same message would fail the same way again. go-smtp
		// then closes the connection, its line reader being past the limit.
		s.log.Warn("submission: message line too long", "trace", trace)
		return RejectLineTooLong, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: fmt.Sprintf("Message has a line longer than %d bytes (RFC 5322 allows 998)", s.srv.smtp.MaxLineLength)}
	case src.err != nil && src.err != io.EOF:
		s.log.Warn("submission: message transfer failed", "trace", trace, "err", src.err)
		return RejectInterrupted, &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
			Message: "Message transfer interrupted"}
	case errors.As(err, &unmendable):
		s.log.Warn("submission: message cannot be relayed", "trace", trace, "reason", unmendable.Reason)
		return RejectBadMessage, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "Message refused: " + unmendable.Reason}
	case errors.Is(err, queue.ErrInvalid):
		s.log.Warn("submission: message refused by the store", "trace", trace, "err", err)
		return RejectBadMessage, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "Message refused: invalid envelope"}
	}
	s.log.Error("submission: store failed", "trace", trace, "err", err)
	return RejectStore, errStore
}

// tags label the message with the authenticated user, for whoever reads
// it; the delivery flags are typed fields of the message.
func (s *session) tags() map[string]string {
	if s.user == "" {
		return nil
	}
	return map[string]string{"user": s.user}
}

// received is the RFC 5321 §4.4 trace header. Every part that came from the
// client has been sanitised, so it cannot add lines to the header block.
// The protocol names follow RFC 3848 (S for TLS, A for authenticated) and
// RFC 6531 §3.7.3: UTF8SMTP for a transaction that used SMTPUTF8.
func (s *session) received(trace string, tx *transaction) string {
	proto := "ESMTP"
	if tx.utf8 {
		proto = "UTF8SMTP"
	}
	if s.tls {
		proto += "S"
	}
	if s.user != "" {
		proto += "A"
	}
	lit := "[" + s.peerIP + "]"
	if strings.Contains(s.peerIP, ":") {
		lit = "[IPv6:" + s.peerIP + "]"
	}
	return fmt.Sprintf("Received: from %s (%s)\r\n\tby %s (outbox) with %s id %s;\r\n\t%s\r\n",
		s.helo, lit, s.srv.cfg.Hostname, proto, trace, time.Now().Format(time.RFC1123Z))
}

// readErr remembers how the client's stream ended and how much it gave.
type readErr struct {
	r   io.Reader
	n   int64
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// subjectOf decodes a Subject field's raw value for listing: unfolded,
// encoded words decoded (any charset go-message knows), control
// characters replaced and the length bounded.
func subjectOf(raw string) string {
	text := strings.Join(strings.Fields(raw), " ")
	if dec, err := wordDecoder.DecodeHeader(text); err == nil {
		text = dec
	}
	return logSafe(text, 998)
}
