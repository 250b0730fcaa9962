package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/templates"
)

// accepted is the body of a 202 answer to a submission.
type accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// postMessage composes a message from JSON fields and queues it. The
// answer is sent only after the store has committed the message.
//
// The body streams through decodeSend: attachments are base64-decoded as
// they arrive, into memory when small and into temporary files otherwise,
// and what the request holds in memory is charged to the bytes-in-flight
// budget, so many large requests at once are answered 503 rather than
// taking the daemon's memory.
func (h *Handler) postMessage(w http.ResponseWriter, r *http.Request) {
	if e := requireJSON(r); e != nil {
		writeError(w, e)
		return
	}
	limit := h.cfg.MaxMessageSize
	if r.ContentLength > limit {
		writeError(w, tooLargeError(limit))
		return
	}
	g, err := h.mem.admit()
	if err != nil {
		writeError(w, errBusy)
		return
	}
	defer g.release()
	var req sendRequest
	defer req.release()
	if err := decodeSend(http.MaxBytesReader(w, r.Body, limit), g, &req); err != nil {
		writeError(w, decodeError(err, limit))
		return
	}
	msg, opts, aerr := h.buildMessage(&req, r.Header.Get("Idempotency-Key"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	id, err := h.client.Enqueue(r.Context(), msg, opts)
	if err != nil {
		writeError(w, h.enqueueError(err, limit, req.fieldName))
		return
	}
	h.changes.Notify()
	writeJSON(w, http.StatusAccepted, accepted{ID: id, Status: "queued"})
}

// requireJSON refuses a body that does not say it is JSON (415): parsing
// any Content-Type as JSON would let a form post from a web page pass for
// an API call, and hides a client's mistake.
func requireJSON(r *http.Request) *apiError {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
		return &apiError{Status: http.StatusUnsupportedMediaType, Field: "Content-Type",
			Msg: "The body must be UTF-8 JSON: send Content-Type: application/json without another charset."}
	}
	if ct == "" {
		ct = "none"
	}
	return &apiError{Status: http.StatusUnsupportedMediaType, Field: "Content-Type",
		Msg: fmt.Sprintf("The body must be JSON sent as Content-Type: application/json (got %s).", strconv.Quote(ct))}
}

// release frees the temporary files of decoded attachments.
func (req *sendRequest) release() {
	for i := range req.Attachments {
		req.Attachments[i].Content.release()
	}
}

// fieldName maps a message.FieldError field to the request's own name:
// custom headers are named by key, since the request gives them as an
// object.
func (req *sendRequest) fieldName(f string) string {
	if rest, ok := strings.CutPrefix(f, "headers["); ok {
		if i, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil && i < len(req.Headers) {
			return headerField(req.Headers[i][0])
		}
	}
	return f
}

func headerField(name string) string {
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "headers." + strconv.Quote(name)
	}
	return "headers." + name
}

// buildMessage checks the request and turns it into a message.
func (h *Handler) buildMessage(req *sendRequest, idemKey string) (*message.Message, *outbox.EnqueueOptions, *apiError) {
	if e := req.checkLineBreaks(); e != nil {
		return nil, nil, e
	}
	opts, e := req.options(idemKey)
	if e != nil {
		return nil, nil, e
	}
	if n := len(req.To) + len(req.Cc) + len(req.Bcc); n > h.cfg.MaxRecipients {
		return nil, nil, unprocessable("to", "too many recipients: %d given in to, cc and bcc, at most %d allowed", n, h.cfg.MaxRecipients)
	}
	m := &message.Message{Subject: req.Subject, Text: req.Text, HTML: req.HTML, Headers: req.Headers}
	if e := req.addresses(m); e != nil {
		return nil, nil, e
	}
	if req.Template != nil {
		if e := h.render(req, m); e != nil {
			return nil, nil, e
		}
	}
	for i := range req.Attachments {
		a, e := req.Attachments[i].toMessage(i, h)
		if e != nil {
			return nil, nil, e
		}
		m.Attachments = append(m.Attachments, a)
	}
	if e := h.deliverability(req, opts); e != nil {
		return nil, nil, e
	}
	return m, opts, nil
}

// checkLineBreaks refuses CR or LF in any field that becomes a header
// line, naming the field: a line break there is how header injection is
// attempted.
func (req *sendRequest) checkLineBreaks() *apiError {
	check := func(field, v string) *apiError {
		if strings.ContainsAny(v, "\r\n") {
			return unprocessable(field, "%s contains a line break (CR or LF), which a header cannot hold", field)
		}
		return nil
	}
	fields := []struct {
		name string
		v    string
	}{{"from", req.From}, {"subject", req.Subject}}
	lists := []struct {
		name string
		l    addrList
	}{{"to", req.To}, {"cc", req.Cc}, {"bcc", req.Bcc}, {"reply_to", req.ReplyTo}}
	for _, l := range lists {
		for i, v := range l.l {
			fields = append(fields, struct {
				name string
				v    string
			}{fmt.Sprintf("%s[%d]", l.name, i), v})
		}
	}
	for _, f := range fields {
		if e := check(f.name, f.v); e != nil {
			return e
		}
	}
	for _, hv := range req.Headers {
		if e := check(headerField(hv[0]), hv[0]+hv[1]); e != nil {
			return e
		}
	}
	for i, a := range req.Attachments {
		p := fmt.Sprintf("attachments[%d].", i)
		for _, f := range [][2]string{{"filename", a.Filename}, {"content_type", a.ContentType}, {"content_id", a.ContentID}} {
			if e := check(p+f[0], f[1]); e != nil {
				return e
			}
		}
	}
	return nil
}

// options reads send_at and the idempotency key.
func (req *sendRequest) options(idemKey string) (*outbox.EnqueueOptions, *apiError) {
	if e := checkIdemKey(idemKey); e != nil {
		return nil, e
	}
	sendAt, e := parseSendAt(req.SendAt)
	if e != nil {
		return nil, e
	}
	return &outbox.EnqueueOptions{IdempotencyKey: idemKey, SendAt: sendAt,
		Source: queue.SourceAPI}, nil
}

// checkIdemKey bounds the Idempotency-Key header, which is stored.
func checkIdemKey(key string) *apiError {
	if len(key) > 200 || strings.ContainsFunc(key, func(r rune) bool { return r < ' ' || r >= 0x7f }) {
		return badRequest("Idempotency-Key", "the Idempotency-Key header must be at most 200 printable ASCII characters")
	}
	return nil
}

// parseSendAt parses an optional RFC 3339 time.
func parseSendAt(s string) (time.Time, *apiError) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, unprocessable("send_at", "send_at %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
	}
	return t, nil
}

// addresses parses from, to, cc, bcc and reply_to into m.
func (req *sendRequest) addresses(m *message.Message) *apiError {
	if strings.TrimSpace(req.From) == "" {
		return unprocessable("from", "from is required")
	}
	a, err := message.ParseAddress(req.From)
	if err != nil {
		return unprocessable("from", "from: %v", err)
	}
	m.From = a
	lists := []struct {
		name string
		in   addrList
		out  *[]message.Address
	}{{"to", req.To, &m.To}, {"cc", req.Cc, &m.Cc}, {"bcc", req.Bcc, &m.Bcc}, {"reply_to", req.ReplyTo, &m.ReplyTo}}
	for _, l := range lists {
		for i, s := range l.in {
			field := fmt.Sprintf("%s[%d]", l.name, i)
			a, err := message.ParseAddress(s)
			if err != nil {
				return unprocessable(field, "%s: %v", field, err)
			}
			*l.out = append(*l.out, a)
		}
	}
	if len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		return unprocessable("to", "at least one recipient is required in to, cc or bcc")
	}
	return nil
}

// render fills m's subject and bodies from the named template; fields
// given explicitly in the request win over the template's.
func (h *Handler) render(req *sendRequest, m *message.Message) *apiError {
	name := req.Template.Name
	if name == "" {
		return unprocessable("template.name", "template.name is required when template is given")
	}
	if h.cfg.Templates == nil {
		return unprocessable("template.name", "no template named %q: this server has no templates", name)
	}
	subject, text, html, err := h.cfg.Templates.Render(name, req.Template.Data)
	var nf *templates.NotFoundError
	var md *templates.MissingDataError
	switch {
	case errors.As(err, &nf):
		return unprocessable("template.name", "no template named %q (known: %s)", name, strings.Join(h.cfg.Templates.Names(), ", "))
	case errors.As(err, &md):
		return unprocessable("template.data."+md.Key, "template %q needs the data field %q", name, md.Key)
	case err != nil:
		return unprocessable("template.data", "template %q cannot be rendered with this data: %v", name, errors.Unwrap(err))
	}
	if m.Subject == "" {
		m.Subject = subject
	}
	if m.Text == "" && m.HTML == "" {
		m.Text, m.HTML = text, html
	}
	return nil
}

// toMessage turns the i-th attachment into a message attachment.
func (a *attachment) toMessage(i int, h *Handler) (message.Attachment, *apiError) {
	field := fmt.Sprintf("attachments[%d].content", i)
	if a.Content.spillErr != nil {
		// The temporary file could not be written: the server's disk.
		h.log.Error("api: spooling an attachment", "err", a.Content.spillErr)
		return message.Attachment{}, errSpool
	}
	if a.Content.err != nil {
		return message.Attachment{}, unprocessable(field, "%s is not valid base64: %v", field, a.Content.err)
	}
	if e := checkComposite(i, a); e != nil {
		return message.Attachment{}, e
	}
	r, err := a.Content.reader()
	if err != nil {
		h.log.Error("api: rewinding an attachment", "err", err)
		return message.Attachment{}, errSpool
	}
	return message.Attachment{Filename: a.Filename, ContentType: a.ContentType,
		Content: r, Inline: a.Inline, ContentID: a.ContentID}, nil
}

// errSpool answers a failure to keep an attachment on the server's disk.
var errSpool = &apiError{Status: http.StatusServiceUnavailable, RetryAfter: storeRetryAfter,
	Msg: "The server could not keep the attachment on its disk; try again later."}

// checkComposite refuses message/* and multipart/* attachments, given or
// guessed from the file name as the composer guesses: attachments are
// sent in base64, which RFC 2045 §6.4 forbids for composite types, and
// a receiver may reject or misread such a part.
func checkComposite(i int, a *attachment) *apiError {
	ct, field := a.ContentType, fmt.Sprintf("attachments[%d].content_type", i)
	if ct == "" {
		ct, field = mime.TypeByExtension(filepath.Ext(a.Filename)), fmt.Sprintf("attachments[%d].filename", i)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.HasPrefix(mt, "message/") && !strings.HasPrefix(mt, "multipart/") {
		return nil
	}
	return unprocessable(field, "%s: %s is a composite type, which RFC 2045 §6.4 does not allow in base64, "+
		"the only encoding of attachments here; attach it as application/octet-stream, or send a whole "+
		"message with POST /v1/messages/raw", field, mt)
}
