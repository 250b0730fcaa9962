package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/outbox-mail/outbox/internal/mailview"
)

// maxContentText bounds the text and the HTML a content answer carries,
// each; the rest of a longer part is left out (text_truncated,
// html_truncated) and can be read from the raw message. The links of the
// whole part are listed all the same.
const maxContentText = 1 << 20

// contentCharge is what one content answer is charged against the
// request memory budget: the text and HTML it may hold, their JSON
// encoding, the links and headers.
const contentCharge = 4*maxContentText + maxLinks*maxLinkLen + mailview.MaxHeaders*mailview.MaxHeaderLen

// Content is the body of GET /v1/messages/{id}/content: the stored
// message as a program reads it.
type Content struct {
	ID string `json:"id"`
	// Headers are the message's header fields in order, RFC 2047 words
	// decoded (at most 100 fields, each value cut at 2000 bytes).
	Headers   []Header   `json:"headers"`
	From      *Address   `json:"from"`
	To        []Address  `json:"to"`
	Cc        []Address  `json:"cc"`
	ReplyTo   []Address  `json:"reply_to"`
	Subject   string     `json:"subject"`
	Date      *time.Time `json:"date,omitempty"`
	MessageID string     `json:"message_id,omitempty"`
	// Text and HTML are the message's text and HTML bodies, decoded to
	// UTF-8, each at most 1 MiB.
	Text          string `json:"text"`
	TextTruncated bool   `json:"text_truncated"`
	HTML          string `json:"html"`
	HTMLTruncated bool   `json:"html_truncated"`
	// Attachments and Inline are the other leaf parts; Inline are those
	// the HTML shows by Content-ID.
	Attachments []Part `json:"attachments"`
	Inline      []Part `json:"inline"`
	// Links are the distinct URLs of the text and HTML bodies, in order.
	Links          []string `json:"links"`
	LinksTruncated bool     `json:"links_truncated"`
	// Problem says why part of the message could not be read, if so.
	Problem string `json:"problem,omitempty"`
}

// Header is one header field.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Address is a mailbox with its display name.
type Address struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Part is an attachment or inline part of a message. Index numbers the
// parts of one message, attachments and inline together, as the URL of
// GET /v1/messages/{id}/attachments/{n} does.
type Part struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	URL         string `json:"url"`
}

func (h *Handler) getContent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g, err := h.mem.admit()
	if err == nil {
		err = g.take(contentCharge)
	}
	defer g.release()
	if err != nil {
		writeError(w, errBusy)
		return
	}
	e, closer, err := mailview.Open(r.Context(), h.client.Store(), id)
	c := &Content{ID: id, Headers: []Header{}, To: []Address{}, Cc: []Address{}, ReplyTo: []Address{},
		Attachments: []Part{}, Inline: []Part{}, Links: []string{}}
	switch {
	case errors.Is(err, mailview.ErrMalformed):
		c.Problem = sentence(err.Error())
		writeJSON(w, http.StatusOK, c)
		return
	case err != nil:
		writeError(w, h.lookupError(err, id))
		return
	}
	defer closer.Close()
	c.envelope(e.Header)
	if err := c.read(e); err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		if !errors.Is(err, mailview.ErrTooComplex) {
			h.log.Warn("api: message content cut short", "id", id, "err", err)
		}
		c.Problem = sentence("part of the message could not be read: " + err.Error())
	}
	writeJSON(w, http.StatusOK, c)
}

// envelope fills in the fields read from the header.
func (c *Content) envelope(hdr message.Header) {
	for _, f := range mailview.Fields(hdr) {
		c.Headers = append(c.Headers, Header{Name: f.Key, Value: f.Value})
	}
	mh := mail.Header{Header: hdr}
	if from := addresses(mh, "From"); len(from) > 0 {
		c.From = &from[0]
	}
	c.To, c.Cc, c.ReplyTo = addresses(mh, "To"), addresses(mh, "Cc"), addresses(mh, "Reply-To")
	c.Subject = clip(textField(hdr, "Subject"))
	if d, err := mh.Date(); err == nil && !d.IsZero() {
		d = d.UTC()
		c.Date = &d
	}
	if mid, err := mh.MessageID(); err == nil {
		c.MessageID = clip(mid)
	}
}

// addresses parses an address field; a field that does not parse gives
// none (its text is still in Headers).
func addresses(mh mail.Header, key string) []Address {
	list, err := mh.AddressList(key)
	out := []Address{}
	if err != nil {
		return out
	}
	for _, a := range list {
		if len(out) == 1000 {
			break
		}
		out = append(out, Address{Name: clip(a.Name), Address: clip(a.Address)})
	}
	return out
}

// textField is a decoded unstructured field, or its raw value.
func textField(hdr message.Header, key string) string {
	v, err := hdr.Text(key)
	if err != nil {
		return hdr.Get(key)
	}
	return v
}

// clip makes header text valid UTF-8 of bounded length.
func clip(s string) string {
	if len(s) > mailview.MaxHeaderLen {
		s = strings.ToValidUTF8(s[:mailview.MaxHeaderLen], "") + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// read walks the body: the text and HTML parts are kept up to
// maxContentText and scanned whole for links; every other part is
// streamed through SHA-256, so no part is ever held whole.
func (c *Content) read(e *message.Entity) error {
	var links, htmlLinks linkSet
	err := mailview.Walk(e, func(l *mailview.Leaf) (bool, error) {
		switch l.Kind {
		case mailview.Text:
			s, cut, err := keepStart(l.Body, func(r io.Reader) error { return scanText(r, &links) })
			c.Text, c.TextTruncated = s, cut
			return false, mailview.IgnoreCharset(err)
		case mailview.HTML:
			s, cut, err := keepStart(l.Body, func(r io.Reader) error { return scanHTML(r, &htmlLinks) })
			c.HTML, c.HTMLTruncated = s, cut
			return false, mailview.IgnoreCharset(err)
		}
		sum := sha256.New()
		n, err := io.Copy(sum, l.Body)
		p := Part{Index: l.Index, Name: mailview.SafeFilename(l.Filename), ContentType: servedType(l),
			ContentID: clip(l.ContentID), Size: n, SHA256: hex.EncodeToString(sum.Sum(nil)),
			URL: "/v1/messages/" + url.PathEscape(c.ID) + "/attachments/" + strconv.Itoa(l.Index)}
		if l.Inline() {
			c.Inline = append(c.Inline, p)
		} else {
			c.Attachments = append(c.Attachments, p)
		}
		return false, mailview.IgnoreCharset(err)
	})
	// The text body's links come first, then the HTML's.
	for _, u := range htmlLinks.list {
		links.add(u)
	}
	c.Links, c.LinksTruncated = links.list, links.truncated || htmlLinks.truncated
	if c.Links == nil {
		c.Links = []string{}
	}
	return err
}

// keepStart reads r to its end through scan and returns its first
// maxContentText bytes as valid UTF-8, cut at a rune, and whether there
// was more.
func keepStart(r io.Reader, scan func(io.Reader) error) (string, bool, error) {
	var head bytes.Buffer
	k := &keeper{buf: &head}
	tee := io.TeeReader(r, k)
	err := scan(tee)
	if err == nil {
		// A scan may stop early (an HTML token past its bound): the part
		// is still read to its end, so that truncated tells the truth.
		_, err = io.Copy(io.Discard, tee)
	}
	b := head.Bytes()
	if k.cut {
		// Back off to the start of a rune, so the cut leaves no half of one.
		for i := len(b) - 1; i >= 0 && i >= len(b)-4; i-- {
			if b[i]&0xC0 != 0x80 {
				b = b[:i]
				break
			}
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), k.cut, err
}

// keeper keeps the first maxContentText bytes written to it.
type keeper struct {
	buf *bytes.Buffer
	cut bool
}

func (k *keeper) Write(p []byte) (int, error) {
	room := maxContentText - k.buf.Len()
	if len(p) > room {
		k.cut = true
		k.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	k.buf.Write(p)
	return len(p), nil
}

// getAttachment streams part n of a message with its type and as a
// download: never rendered in the API's origin, whatever it claims to be.
func (h *Handler) getAttachment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		writeError(w, badRequest("n", "n must be a part number from 0, as the content's attachments and inline list them"))
		return
	}
	e, closer, err := mailview.Open(r.Context(), h.client.Store(), id)
	switch {
	case errors.Is(err, mailview.ErrMalformed):
		writeError(w, noPart(n))
		return
	case err != nil:
		writeError(w, h.lookupError(err, id))
		return
	}
	defer closer.Close()
	found := false
	err = mailview.Walk(e, func(l *mailview.Leaf) (bool, error) {
		if l.Kind != mailview.Part || l.Index != n {
			return false, nil
		}
		found = true
		hd := w.Header()
		hd.Set("Content-Type", servedType(l))
		hd.Set("Content-Disposition", mime.FormatMediaType("attachment",
			map[string]string{"filename": mailview.SafeFilename(l.Filename)}))
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		_, err := io.Copy(w, l.Body)
		return true, mailview.IgnoreCharset(err)
	})
	switch {
	case found && err != nil:
		// The status line is gone: cut the connection, so the client
		// sees a failure rather than a short file.
		h.log.Warn("api: attachment cut short", "id", id, "n", n, "err", err)
		panic(http.ErrAbortHandler)
	case !found && err != nil && !errors.Is(err, mailview.ErrTooComplex) && r.Context().Err() == nil:
		writeError(w, h.storeError(err))
	case !found:
		writeError(w, noPart(n))
	}
}

func noPart(n int) *apiError {
	return &apiError{Status: http.StatusNotFound, Field: "n",
		Msg: "The message has no part " + strconv.Itoa(n) + "; its content lists the parts it has."}
}

// servedType is the media type a part is served as: its own, without
// parameters, except that text comes as UTF-8, which it was decoded to.
func servedType(l *mailview.Leaf) string {
	t := l.ContentType
	if _, _, err := mime.ParseMediaType(t); err != nil || t == "" {
		return "application/octet-stream"
	}
	if strings.HasPrefix(t, "text/") {
		return t + "; charset=utf-8"
	}
	return t
}

// getRaw streams the stored RFC 5322 message exactly as it is kept (and
// sent), with its length, so a client can tell a cut from the end.
func (h *Handler) getRaw(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	st := h.client.Store()
	m, err := st.Get(r.Context(), id)
	if err != nil {
		writeError(w, h.lookupError(err, id))
		return
	}
	body, err := st.OpenBody(r.Context(), id)
	if err != nil {
		writeError(w, h.lookupError(err, id))
		return
	}
	defer body.Close()
	hd := w.Header()
	hd.Set("Content-Type", "message/rfc822")
	hd.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, body); err != nil && r.Context().Err() == nil {
		h.log.Warn("api: raw message cut short", "id", id, "err", err)
		panic(http.ErrAbortHandler)
	}
}
