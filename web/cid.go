package web

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// Inline images: a message's HTML names its embedded images "cid:…"
// (RFC 2392), which no browser loads. The HTML served to the sandboxed
// frame has them rewritten to /messages/ID/cid/CONTENT-ID, and that
// frame's CSP allows images from that path and nowhere else (remote ones
// only when the user asks). The frame has an opaque origin, so the
// browser sends no SameSite=Strict session cookie with its requests;
// each rewritten URL carries instead a key that opens that message's
// inline parts, for a while, and nothing else.

// cidURL is the address of the part whose Content-ID is cid, in message id.
func cidURL(id, cid, key string) string {
	return "/messages/" + url.PathEscape(id) + "/cid/" + url.PathEscape(cid) + "?k=" + key
}

// cidKey signs access to message id's inline parts until exp.
func (a *authenticator) cidKey(id string, exp time.Time) string {
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(exp.Unix()))
	return strconv.FormatInt(exp.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString(a.mac("cid", []byte(id), e[:]))
}

// cidKeyValid checks a key made by cidKey for id.
func (a *authenticator) cidKeyValid(id, key string) bool {
	exp, sig, ok := strings.Cut(key, ".")
	t, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || time.Now().Unix() > t {
		return false
	}
	return hmac.Equal([]byte(a.cidKey(id, time.Unix(t, 0))), []byte(exp+"."+sig))
}

// cssCID finds url(cid:…) in CSS, quoted or not.
var cssCID = regexp.MustCompile(`(?i)url\(\s*(['"]?)cid:([^'")\s]+)(['"]?)\s*\)`)

// cidAttrs are the attributes that name an image or a background.
var cidAttrs = map[string]bool{"src": true, "background": true, "poster": true}

// rewriteCID copies an HTML document from r to w with every cid: image
// reference pointing at its part's URL (made by to). Tokens without one
// are copied byte for byte; a tag that has one is written again, its
// attribute values escaped.
func rewriteCID(w io.Writer, r io.Reader, to func(cid string) string) error {
	z := html.NewTokenizer(r)
	inStyle := false
	for {
		tt := z.Next()
		var err error
		switch tt {
		case html.ErrorToken:
			if errors.Is(z.Err(), io.EOF) {
				_, err = w.Write(z.Raw()) // a tag the document ends inside
				return err
			}
			return z.Err()
		case html.StartTagToken, html.SelfClosingTagToken:
			raw := z.Raw()
			if !bytes.Contains(bytes.ToLower(raw), []byte("cid:")) {
				name, _ := z.TagName()
				inStyle = tt == html.StartTagToken && string(name) == "style"
				_, err = w.Write(raw)
				break
			}
			raw = append([]byte(nil), raw...) // Token reuses the buffer
			t := z.Token()
			inStyle = tt == html.StartTagToken && t.Data == "style"
			for i, a := range t.Attr {
				switch v := strings.TrimSpace(a.Val); {
				case cidAttrs[a.Key] && len(v) > 4 && strings.EqualFold(v[:4], "cid:"):
					t.Attr[i].Val = to(unescapeCID(v[4:]))
				case a.Key == "style":
					t.Attr[i].Val = rewriteCSS(a.Val, to)
				}
			}
			_, err = io.WriteString(w, t.String())
		case html.EndTagToken:
			inStyle = false
			_, err = w.Write(z.Raw())
		case html.TextToken:
			if inStyle {
				_, err = io.WriteString(w, rewriteCSS(string(z.Raw()), to))
				break
			}
			_, err = w.Write(z.Raw())
		default:
			_, err = w.Write(z.Raw())
		}
		if err != nil {
			return err
		}
	}
}

// rewriteCSS points url(cid:…) in CSS at the parts.
func rewriteCSS(css string, to func(cid string) string) string {
	return cssCID.ReplaceAllStringFunc(css, func(m string) string {
		sub := cssCID.FindStringSubmatch(m)
		return `url("` + to(unescapeCID(sub[2])) + `")`
	})
}

// unescapeCID undoes the %-escapes a cid: URL may carry (RFC 2392).
func unescapeCID(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
