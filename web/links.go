package web

import (
	"errors"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// Bounds on the link check list.
const (
	maxLinks    = 500
	maxLinkText = 200
)

// link is one link of a message, with what the link check found.
type link struct {
	// Text is what the reader sees: an HTML link's text (or its image's
	// alt text); empty for a URL in the text part.
	Text   string
	Target string
	// Host is the target's host, lower-cased, "" for a target without one.
	Host string
	// Source is "html" or "text".
	Source string
	// Web is true for an http or https target, the only ones the page
	// makes clickable.
	Web bool
	// Warnings say what looks wrong: a text that names another host, a
	// scheme that runs code, a bare IP address, a look-alike host name.
	Warnings []string
}

// htmlLinks lists the <a href> and <area href> links of an HTML part with
// their text, in order.
func htmlLinks(r io.Reader) ([]link, error) {
	var out []link
	z := html.NewTokenizer(r)
	var cur *link // the <a> being read
	var text strings.Builder
	for len(out) < maxLinks {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if errors.Is(z.Err(), io.EOF) {
				return finishLinks(out, cur, &text), nil
			}
			return finishLinks(out, cur, &text), z.Err()
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			attrs := tagAttrs(z, hasAttr)
			switch {
			case tag == "a" || tag == "area":
				out = finishLinks(out, cur, &text)
				cur = nil
				if href, ok := attrs["href"]; ok {
					cur = &link{Target: href, Source: "html"}
					if tag == "area" || tt == html.SelfClosingTagToken {
						text.WriteString(attrs["alt"])
						out, cur = finishLinks(out, cur, &text), nil
					}
				}
			case tag == "img" && cur != nil:
				text.WriteString(" " + attrs["alt"] + " ")
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "a" {
				out, cur = finishLinks(out, cur, &text), nil
			}
		case html.TextToken:
			if cur != nil && text.Len() < 4*maxLinkText {
				text.Write(z.Text())
			}
		}
	}
	return out, nil
}

// tagAttrs reads a tag's attributes, lower-cased names, first one wins.
func tagAttrs(z *html.Tokenizer, more bool) map[string]string {
	attrs := map[string]string{}
	for more {
		var k, v []byte
		k, v, more = z.TagAttr()
		if _, seen := attrs[string(k)]; !seen {
			attrs[string(k)] = string(v)
		}
	}
	return attrs
}

// finishLinks adds cur, if any, with the text gathered for it.
func finishLinks(out []link, cur *link, text *strings.Builder) []link {
	if cur != nil {
		cur.Text = strings.Join(strings.Fields(text.String()), " ")
		if r := []rune(cur.Text); len(r) > maxLinkText {
			cur.Text = string(r[:maxLinkText]) + "…"
		}
		out = append(out, checkLink(*cur))
	}
	text.Reset()
	return out
}

// textURL finds URLs in plain text; trailing punctuation is trimmed after.
var textURL = regexp.MustCompile(`(?i)\b(?:https?://|www\.)[^\s<>"]+`)

// textLinks lists the URLs written in a text part.
func textLinks(s string) []link {
	var out []link
	for _, m := range textURL.FindAllString(s, maxLinks) {
		m = strings.TrimRight(m, ".,;:!?)]}'")
		if strings.HasPrefix(strings.ToLower(m), "www.") {
			m = "http://" + m
		}
		out = append(out, checkLink(link{Target: m, Source: "text"}))
	}
	return out
}

// checkLink fills in the host and the warnings of l.
func checkLink(l link) link {
	u, err := url.Parse(strings.TrimSpace(l.Target))
	if err != nil {
		l.Warnings = append(l.Warnings, "not a valid URL")
		return l
	}
	scheme := strings.ToLower(u.Scheme)
	l.Host = strings.ToLower(u.Hostname())
	l.Web = (scheme == "http" || scheme == "https") && l.Host != ""
	switch scheme {
	case "http", "https", "mailto", "tel":
	case "javascript", "vbscript", "data", "file":
		l.Warnings = append(l.Warnings, "a "+scheme+": link runs or opens something on the reader's computer")
	case "":
		l.Warnings = append(l.Warnings, "a relative link, which leads nowhere from an email")
	default:
		l.Warnings = append(l.Warnings, "an unusual scheme ("+scheme+":)")
	}
	if net.ParseIP(l.Host) != nil {
		l.Warnings = append(l.Warnings, "goes to a bare IP address, not a name")
	}
	if strings.HasPrefix(l.Host, "xn--") || strings.Contains(l.Host, ".xn--") {
		l.Warnings = append(l.Warnings, "an internationalised host name ("+l.Host+"), which can imitate another")
	}
	if shown := shownHost(l.Text); shown != "" && l.Host != "" && !sameSite(shown, l.Host) {
		l.Warnings = append(l.Warnings, "the text shows "+shown+" but the link goes to "+l.Host)
	}
	return l
}

// shownHost is the host a link's text claims to lead to, when the text
// looks like a URL or a host name ("https://bank.example/login",
// "www.bank.example", "bank.example"); "" for ordinary words.
func shownHost(text string) string {
	t := strings.TrimSpace(text)
	if t == "" || strings.ContainsAny(t, " \t") || !strings.Contains(t, ".") {
		return ""
	}
	if !strings.Contains(t, "://") {
		if strings.Contains(t, "@") {
			return "" // an address, as mailto: links show
		}
		t = "http://" + t
	}
	u, err := url.Parse(t)
	if err != nil {
		return ""
	}
	h := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	// A host has a dot and no label that is all digits at its end
	// ("version 1.2" is no host), unless it is an IP address.
	if i := strings.LastIndexByte(h, '.'); i < 0 || i == len(h)-1 || (strings.Trim(h[i+1:], "0123456789") == "" && net.ParseIP(h) == nil) {
		return ""
	}
	return h
}

// sameSite reports whether two hosts are the same but for a leading www.
func sameSite(a, b string) bool {
	return strings.TrimPrefix(a, "www.") == strings.TrimPrefix(strings.TrimSuffix(b, "."), "www.")
}
