package submission

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/internal/headerblock"
	"github.com/outbox-mail/outbox/queue"
)

// headerPeek bounds how much of a message is looked at for its Subject.
const headerPeek = 64 << 10

// peekPool recycles the header-peek buffers: one 64 KiB allocation per
// message would dominate the garbage of small submissions.
var peekPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headerPeek) }}

var errStore = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
	Message: "Temporary failure storing the message, try again later"}

// Data streams the message into the queue: a Received header, then the
// client's bytes as they arrive, less the header block's Bcc and Resent-Bcc
// fields (the recipients they name are in the envelope already, from RCPT),
// as Postfix's cleanup removes them. It answers 250 with the queue id only once
// the store reports the message durable.
func (s *session) Data(r io.Reader) error {
	tx := s.tx
	if tx == nil || len(tx.rcpts) == 0 {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}
	src := &readErr{r: r}
	br := peekPool.Get().(*bufio.Reader)
	br.Reset(src)
	defer func() { br.Reset(nil); peekPool.Put(br) }()
	// Peek fills the buffer without consuming it: br re-emits these bytes.
	head, _ := br.Peek(headerPeek)
	trace := traceID()
	nm := queue.NewMessage{
		From:       tx.from,
		Recipients: tx.rcpts,
		Subject:    subjectOf(head, src.err == io.EOF),
		Body:       io.MultiReader(strings.NewReader(s.received(trace)), headerblock.StripBcc(br)),
		Source:     queue.SourceSMTP,
		Flags:      queue.Flags{EightBit: tx.body8bit, SMTPUTF8: tx.utf8},
		Tags:       s.tags(),
	}
	id, err := s.srv.cfg.Enqueuer.EnqueueRaw(s.srv.ctx, nm)
	if err != nil {
		return s.dataFailed(trace, src, err)
	}
	s.log.Info("submission: queued", "id", id, "trace", trace,
		"recipients", len(tx.rcpts), "size", src.n)
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
	switch {
	case src.err == smtp.ErrDataTooLarge:
		s.log.Warn("submission: message too large", "trace", trace, "limit", s.srv.cfg.MaxMessageSize)
		return smtp.ErrDataTooLarge
	case src.err == smtp.ErrTooLongLine:
		// Permanent: the same message would fail the same way again. go-smtp
		// then closes the connection, its line reader being past the limit.
		s.log.Warn("submission: message line too long", "trace", trace)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: fmt.Sprintf("Message has a line longer than %d bytes (RFC 5322 allows 998)", s.srv.smtp.MaxLineLength)}
	case src.err != nil && src.err != io.EOF:
		s.log.Warn("submission: message transfer failed", "trace", trace, "err", src.err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
			Message: "Message transfer interrupted"}
	case errors.Is(err, queue.ErrInvalid):
		s.log.Warn("submission: message refused by the store", "trace", trace, "err", err)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "Message refused: invalid envelope"}
	}
	s.log.Error("submission: store failed", "trace", trace, "err", err)
	return errStore
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
// The protocol names follow RFC 3848: S for TLS, A for authenticated.
func (s *session) received(trace string) string {
	proto := "ESMTP"
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

// subjectOf returns the decoded Subject from the start of a message, or ""
// when the header block does not end within head (and the message is
// longer), so a truncated line is never taken for the subject. It reads the
// header block leniently (net/textproto refuses control characters that
// real mail carries): only the Subject field matters here.
func subjectOf(head []byte, whole bool) string {
	end := headerEnd(head)
	if end < 0 {
		if !whole {
			return ""
		}
		end = len(head)
	}
	var subj []byte
	in := false // inside the Subject field, reading continuation lines
	for _, line := range bytes.Split(head[:end], []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if in && len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			subj = append(subj, line...)
			continue
		}
		if in {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Subject") {
			subj, in = append(subj, value...), true
		}
	}
	text := strings.Join(strings.Fields(string(subj)), " ")
	if dec, err := wordDecoder.DecodeHeader(text); err == nil {
		text = dec
	}
	return logSafe(text, 998)
}

// headerEnd returns the length of the header block (without the blank
// line), or -1 if head does not contain its end.
func headerEnd(head []byte) int {
	if bytes.HasPrefix(head, []byte("\r\n")) || bytes.HasPrefix(head, []byte("\n")) {
		return 0
	}
	i := bytes.Index(head, []byte("\r\n\r\n"))
	j := bytes.Index(head, []byte("\n\n"))
	switch {
	case i < 0:
		return j
	case j < 0 || i < j:
		return i
	}
	return j
}
