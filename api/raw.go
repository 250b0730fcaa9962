package api

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/internal/headerblock"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/message/mime7"
	"github.com/outbox-mail/outbox/queue"
)

// maxHeaderBlock bounds the header block of a raw message, the only part
// read into memory; the body streams into the store.
const maxHeaderBlock = 256 << 10

// postRaw queues a ready RFC 5322 message given as the request body.
//
// The query may also give send_at (RFC 3339). The envelope comes from the
// query (from, repeated to) or, for whatever the query leaves out, from the
// message's headers: From (or Sender when From holds several mailboxes) and
// To, Cc and Bcc. Bcc and Resent-Bcc header fields are always removed from
// the stored message, as sendmail -t and Postfix do: a Bcc recipient must
// not be revealed to the others, whichever way the envelope was given.
func (h *Handler) postRaw(w http.ResponseWriter, r *http.Request) {
	limit := h.cfg.MaxMessageSize
	g, err := h.mem.admit()
	if err != nil {
		writeError(w, errBusy)
		return
	}
	defer g.release()
	br := bufio.NewReaderSize(http.MaxBytesReader(w, r.Body, limit), 32<<10)
	hdr, info, err := readHeaderBlock(br)
	if err == nil {
		err = g.take(int64(len(hdr)))
	}
	if err != nil {
		switch {
		case isBusy(err):
			writeError(w, errBusy)
		case tooLarge(err):
			writeError(w, tooLargeError(limit))
		case errors.Is(err, errHeaderTooLarge):
			writeError(w, &apiError{Status: http.StatusRequestEntityTooLarge, Msg: sentence(err.Error())})
		default:
			writeError(w, badRequest("", "%v", err))
		}
		return
	}
	nm, e := h.rawEnvelope(r.URL.Query(), hdr)
	if e != nil {
		writeError(w, e)
		return
	}
	nm.IdempotencyKey = r.Header.Get("Idempotency-Key")
	if e = checkIdemKey(nm.IdempotencyKey); e == nil {
		nm.SendAt, e = parseSendAt(r.URL.Query().Get("send_at"))
	}
	if e != nil {
		writeError(w, e)
		return
	}
	// The MSA's repairs (a missing Date, Message-ID or header block) come
	// before Bcc is stripped, so that a message with no header block keeps
	// its first lines as body; mime7.Check refuses a line over 998 octets
	// that could never be relayed.
	rep := info.Repair(h.cfg.Hostname, time.Now())
	nm.Body = headerblock.StripBcc(rep.Apply(bytes.NewReader(hdr), br))
	nm.CheckLongLines = mime7.Verify
	nm.Repairs = rep.Added
	id, err := h.client.EnqueueRaw(r.Context(), nm)
	var unmendable *mime7.Error
	switch {
	case errors.As(err, &unmendable):
		writeError(w, unprocessable("", "the message cannot be relayed: %s", unmendable.Reason))
		return
	case err != nil:
		writeError(w, h.enqueueError(err, limit, func(f string) string { return f }))
		return
	}
	h.changes.Notify()
	writeJSON(w, http.StatusAccepted, accepted{ID: id, Status: "queued"})
}

// readHeaderBlock reads the header block up to and including the empty
// line that ends it (or to the end of a message that has no body); a
// message with no header block gives an empty one.
func readHeaderBlock(br *bufio.Reader) ([]byte, headerblock.Info, error) {
	hdr, info, err := headerblock.Read(br, maxHeaderBlock)
	switch {
	case errors.Is(err, headerblock.ErrTooLarge):
		return nil, info, errHeaderTooLarge
	case err != nil:
		return nil, info, err
	case len(hdr) == 0 && !info.NoHeader:
		return nil, info, errors.New("the request body is empty; an RFC 5322 message was expected")
	}
	return hdr, info, nil
}

var errHeaderTooLarge = fmt.Errorf("the message's header block is longer than %d bytes", maxHeaderBlock)

// rawEnvelope works out the envelope and subject of a raw message.
func (h *Handler) rawEnvelope(q url.Values, hdr []byte) (queue.NewMessage, *apiError) {
	// A header block without its closing empty line still parses.
	parsed, err := mail.ReadMessage(io.MultiReader(bytes.NewReader(hdr), strings.NewReader("\r\n")))
	if err != nil {
		return queue.NewMessage{}, unprocessable("", "the message header is malformed: %v", err)
	}
	header := normalized(parsed.Header)
	env := &message.Message{}
	if e := rawSender(q, header, env); e != nil {
		return queue.NewMessage{}, e
	}
	if e := rawRecipients(q, header, headerblock.Removed(hdr), env); e != nil {
		return queue.NewMessage{}, e
	}
	from, rcpts := env.Envelope()
	if len(rcpts) > h.cfg.MaxRecipients {
		return queue.NewMessage{}, unprocessable("to", "too many recipients: %d given, at most %d allowed", len(rcpts), h.cfg.MaxRecipients)
	}
	nm := queue.NewMessage{From: from, Recipients: rcpts, Subject: decodeSubject(header.Get("Subject")),
		Source: queue.SourceAPI}
	nm.SMTPUTF8 = env.NeedsSMTPUTF8()
	return nm, nil
}

// rawSender sets env.From from the query or the From/Sender header.
func rawSender(q url.Values, header mail.Header, env *message.Message) *apiError {
	if s := q.Get("from"); s != "" {
		a, err := message.ParseAddress(s)
		if err != nil {
			return unprocessable("from", "from: %v", err)
		}
		env.From = a
		return nil
	}
	name := "From"
	list, err := parseHeaderList(header, name)
	if err == nil && len(list) > 1 {
		// RFC 5322 names the Sender as the one responsible for a message
		// with several authors.
		name = "Sender"
		list, err = parseHeaderList(header, name)
	}
	switch {
	case err != nil:
		return unprocessable("header."+name, "the %s header: %v", name, err)
	case len(list) != 1:
		return unprocessable("from", "no sender: give ?from= or a From header with one address")
	}
	env.From = list[0]
	return nil
}

// normalized keys a parsed header by canonical name, so that "To : x"
// (white space before the colon, which net/mail keeps in the name) is the
// To field.
func normalized(h mail.Header) mail.Header {
	out := make(mail.Header, len(h))
	for k, v := range h {
		k = textproto.CanonicalMIMEHeaderKey(strings.TrimRight(k, " \t"))
		out[k] = append(out[k], v...)
	}
	return out
}

// rawRecipients sets env's recipients from the query's to parameters or
// the To, Cc and Bcc headers. The Bcc recipients are read from exactly the
// fields the Bcc filter removes (removed), so that whatever is stripped
// from the message was either sent to or refused — never silently
// dropped. Resent-Bcc names the recipients of a resending, which this
// endpoint does not take from headers: such a message is refused.
func rawRecipients(q url.Values, header mail.Header, removed []headerblock.Field, env *message.Message) *apiError {
	if tos := q["to"]; len(tos) > 0 {
		for i, s := range tos {
			a, err := message.ParseAddress(s)
			if err != nil {
				field := fmt.Sprintf("to[%d]", i)
				return unprocessable(field, "%s: %v", field, err)
			}
			env.To = append(env.To, a)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		out  *[]message.Address
	}{{"To", &env.To}, {"Cc", &env.Cc}} {
		list, err := parseHeaderList(header, f.name)
		if err != nil {
			return unprocessable("header."+f.name, "the %s header: %v", f.name, err)
		}
		*f.out = list
	}
	for _, f := range removed {
		if !strings.EqualFold(f.Name, "Bcc") {
			f.Name = strings.Join(strings.Fields(f.Name), " ")
			if len(f.Name) > 64 {
				f.Name = strings.ToValidUTF8(f.Name[:64], "") + "…"
			}
			return badRequest("header."+f.Name, "the %s header names recipients who would be removed from the message "+
				"and not sent to: give the envelope with ?to= instead", f.Name)
		}
		if strings.TrimSpace(f.Value) == "" {
			continue
		}
		list, err := message.ParseAddressList(f.Value)
		if err != nil {
			return unprocessable("header.Bcc", "the Bcc header: %v", err)
		}
		env.Bcc = append(env.Bcc, list...)
	}
	if len(env.To)+len(env.Cc)+len(env.Bcc) == 0 {
		return unprocessable("to", "no recipients: give ?to= or To, Cc or Bcc headers")
	}
	return nil
}

// parseHeaderList parses every field of that name as an address list.
func parseHeaderList(header mail.Header, name string) ([]message.Address, error) {
	var out []message.Address
	for _, v := range header[name] {
		if strings.TrimSpace(v) == "" {
			continue
		}
		list, err := message.ParseAddressList(v)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return out, nil
}

// decodeSubject decodes encoded words for listing; the stored message
// keeps its header as given.
func decodeSubject(s string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		s = d
	}
	return strings.Join(strings.Fields(s), " ")
}
