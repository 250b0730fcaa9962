package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

// resetMail is a password-reset message with a text and an HTML body, an
// inline logo and a PDF attachment.
func resetMail(pdf, png []byte) map[string]any {
	return map[string]any{
		"from": "Shop <shop@example.com>", "to": []string{"Ann Smith <ann@example.org>"},
		"cc": []string{"bob@example.net"}, "reply_to": "Help <help@example.com>",
		"subject": "Réinitialisez votre mot de passe",
		"text":    "Hello Ann,\n\nReset it here: https://shop.test/reset?token=abc123.\n(Or see https://shop.test/help_(faq))\n",
		"html": `<p>Hello Ann,</p><p><a href=" https://shop.test/reset?token=abc123 ">Reset</a>` +
			`<img src="cid:logo"> <a href="/relative">x</a> <a href="mailto:help@example.com">mail us</a>` +
			` Or visit https://shop.test/other&amp;more</p>`,
		"attachments": []map[string]any{
			{"filename": "../../terms.pdf", "content_type": "application/pdf", "content": base64.StdEncoding.EncodeToString(pdf)},
			{"filename": "logo.png", "content_type": "image/png", "content": base64.StdEncoding.EncodeToString(png),
				"inline": true, "content_id": "logo"},
		},
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestContentOfSentMessage(t *testing.T) {
	e := setup(t, Config{}, true)
	pdf := bytes.Repeat([]byte("%PDF-1.4 binary \x00\xff"), 5000)
	png := []byte("\x89PNG\r\n\x1a\nnot really an image")
	id := e.send(resetMail(pdf, png))
	e.waitStatus(id, queue.StatusDelivered)

	r := e.do("GET", "/v1/messages/"+id+"/content", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("content: %d %s", r.Status, r.Body)
	}
	var c Content
	r.decode(t, &c)
	if c.ID != id || c.From == nil || *c.From != (Address{"Shop", "shop@example.com"}) ||
		!slices.Equal(c.To, []Address{{"Ann Smith", "ann@example.org"}}) ||
		!slices.Equal(c.Cc, []Address{{"", "bob@example.net"}}) ||
		!slices.Equal(c.ReplyTo, []Address{{"Help", "help@example.com"}}) {
		t.Errorf("addresses: from %+v to %+v cc %+v reply-to %+v", c.From, c.To, c.Cc, c.ReplyTo)
	}
	if c.Subject != "Réinitialisez votre mot de passe" || c.Date == nil || c.MessageID == "" {
		t.Errorf("subject %q, date %v, message id %q", c.Subject, c.Date, c.MessageID)
	}
	if !strings.Contains(c.Text, "token=abc123.") || !strings.Contains(c.HTML, `<img src="cid:logo">`) ||
		c.TextTruncated || c.HTMLTruncated || c.Problem != "" {
		t.Errorf("bodies: text %q html %q (cut %v %v) problem %q", c.Text, c.HTML, c.TextTruncated, c.HTMLTruncated, c.Problem)
	}
	wantLinks := []string{"https://shop.test/reset?token=abc123", "https://shop.test/help_(faq)",
		"mailto:help@example.com", "https://shop.test/other&more"}
	if !slices.Equal(c.Links, wantLinks) {
		t.Errorf("links %q, want %q", c.Links, wantLinks)
	}
	var subject Header
	for _, h := range c.Headers {
		if h.Name == "Subject" {
			subject = h
		}
	}
	if subject.Value != c.Subject || c.Headers[0].Name == "" {
		t.Errorf("headers %+v lack the decoded subject", c.Headers)
	}
	if len(c.Attachments) != 1 || len(c.Inline) != 1 {
		t.Fatalf("attachments %+v inline %+v", c.Attachments, c.Inline)
	}
	a, in := c.Attachments[0], c.Inline[0]
	if a.Name != "terms.pdf" || a.ContentType != "application/pdf" || a.Size != int64(len(pdf)) || a.SHA256 != hexSum(pdf) {
		t.Errorf("attachment %+v, want terms.pdf of %d bytes, sha256 %s", a, len(pdf), hexSum(pdf))
	}
	if in.ContentID != "logo" || in.ContentType != "image/png" || in.Size != int64(len(png)) || in.SHA256 != hexSum(png) {
		t.Errorf("inline part %+v", in)
	}
	for _, p := range []struct {
		part Part
		want []byte
	}{{a, pdf}, {in, png}} {
		r := e.do("GET", p.part.URL, nil)
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
		if r.Status != 200 || !bytes.Equal(r.Body, p.want) || r.Header.Get("Content-Type") != p.part.ContentType ||
			err != nil || params["filename"] != p.part.Name || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, %d bytes, type %q, disposition %q", p.part.URL, r.Status, len(r.Body),
				r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"))
		}
	}

	raw := e.do("GET", "/v1/messages/"+id+"/raw", nil)
	stored := []byte(storedBody(t, e, id))
	if raw.Status != 200 || !bytes.Equal(raw.Body, stored) || raw.Header.Get("Content-Type") != "message/rfc822" ||
		raw.Header.Get("Content-Length") != strconv.Itoa(len(stored)) {
		t.Errorf("raw: %d, %d bytes (stored %d), type %q", raw.Status, len(raw.Body), len(stored), raw.Header.Get("Content-Type"))
	}
}

func TestContentErrors(t *testing.T) {
	e := setup(t, Config{}, false)
	id := e.send(simple())
	for _, tc := range []struct {
		path   string
		status int
		field  string
	}{
		{"/v1/messages/nope/content", 404, "id"},
		{"/v1/messages/nope/raw", 404, "id"},
		{"/v1/messages/nope/attachments/0", 404, "id"},
		{"/v1/messages/" + id + "/attachments/0", 404, "n"},
		{"/v1/messages/" + id + "/attachments/x", 400, "n"},
		{"/v1/messages/" + id + "/attachments/-1", 400, "n"},
	} {
		r := e.do("GET", tc.path, nil)
		if r.Status != tc.status || r.apiErr(t).Field != tc.field {
			t.Errorf("GET %s: %d %s, want %d naming %q", tc.path, r.Status, r.Body, tc.status, tc.field)
		}
	}
	if r := e.do("POST", "/v1/messages/"+id+"/content", nil); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST content: %d, Allow %q", r.Status, r.Header.Get("Allow"))
	}
}

// TestContentBounds: a text body past the bound is cut at a rune and
// flagged, while its links are found to the end; a message that does
// not parse as MIME still answers, with its problem said.
func TestContentBounds(t *testing.T) {
	e := setup(t, Config{}, false)
	text := strings.Repeat("é", maxContentText/2+10) + "\nlast link: https://far.test/end\n"
	id := e.send(map[string]any{"from": "a@example.com", "to": []string{"b@example.com"}, "subject": "big", "text": text})
	r := e.do("GET", "/v1/messages/"+id+"/content", nil)
	var c Content
	r.decode(t, &c)
	if !c.TextTruncated || len(c.Text) > maxContentText || !strings.HasPrefix(c.Text, "éé") || strings.ContainsRune(c.Text, '\uFFFD') {
		t.Errorf("long text: cut %v, %d bytes, clean %v", c.TextTruncated, len(c.Text), !strings.ContainsRune(c.Text, '\uFFFD'))
	}
	if !slices.Equal(c.Links, []string{"https://far.test/end"}) {
		t.Errorf("links of a long text %q", c.Links)
	}

	bad := "From: a@example.com\r\nTo: b@example.com\r\nSubject: odd\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi https://x.test/\r\n"
	r = e.do("POST", "/v1/messages/raw", strings.NewReader(bad), "Content-Type", "message/rfc822")
	var acc accepted
	r.decode(t, &acc)
	r = e.do("GET", "/v1/messages/"+acc.ID+"/content", nil)
	c = Content{}
	r.decode(t, &c)
	if r.Status != 200 || c.Subject != "odd" || c.Text != "hi https://x.test/\r\n" && c.Problem == "" {
		t.Errorf("unterminated multipart: %d %s", r.Status, r.Body)
	}
}

func TestScanLinks(t *testing.T) {
	var l linkSet
	if err := scanText(strings.NewReader("see <https://a.test/x>, \"http://b.test\" and https://c.test/p?q=1). "+
		"HTTPS://D.TEST/ https:// "+strings.Repeat("x", 3*maxLinkLen)+"https://long.test/ ok\u00a0https://e.test/(1)"), &l); err != nil {
		t.Fatal(err)
	}
	want := []string{"https://a.test/x", "http://b.test", "https://c.test/p?q=1", "HTTPS://D.TEST/", "https://e.test/(1)"}
	if !slices.Equal(l.list, want) {
		t.Errorf("text links %q, want %q", l.list, want)
	}
	l = linkSet{}
	if err := scanHTML(strings.NewReader(`<a href="https://a.test/">a</a><A HREF="https://a.test/">dup</A>`+
		`<img src="data:image/png;base64,AAAA"><img src="cid:x"><area href="http://b.test/map">`+
		`<a href="java&#115;cript:alert(1)">no</a><a href="https://c.test/&#x3f;q">c</a><p>text https://d.test/</p>`), &l); err != nil {
		t.Fatal(err)
	}
	want = []string{"https://a.test/", "http://b.test/map", "https://c.test/?q", "https://d.test/"}
	if !slices.Equal(l.list, want) {
		t.Errorf("HTML links %q, want %q", l.list, want)
	}
	l = linkSet{}
	for i := range maxLinks + 3 {
		l.add("https://x.test/" + strconv.Itoa(i))
	}
	if len(l.list) != maxLinks || !l.truncated {
		t.Errorf("%d links kept of %d, truncated %v", len(l.list), maxLinks+3, l.truncated)
	}
}

func FuzzScanLinks(f *testing.F) {
	f.Add("see https://a.test/(x)). <a href='http://b.test'>b</a>")
	f.Fuzz(func(t *testing.T, s string) {
		for _, scan := range []func(io.Reader, *linkSet) error{scanText, scanHTML} {
			var l linkSet
			_ = scan(strings.NewReader(s), &l)
			seen := map[string]bool{}
			for _, u := range l.list {
				if seen[u] || u == "" || len(u) > maxLinkLen {
					t.Fatalf("link %q repeated, empty or too long", u)
				}
				seen[u] = true
				if lu := strings.ToLower(u); !strings.HasPrefix(lu, "http://") && !strings.HasPrefix(lu, "https://") &&
					!strings.HasPrefix(lu, "mailto:") {
					t.Fatalf("link %q has a scheme that is not listed", u)
				}
			}
		}
	})
}
