package web

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// FuzzRewriteCID: any HTML is rewritten without a panic; a document with
// no "cid:" at all comes out byte for byte; every image the output names
// by cid: was rewritten, so none is left for the browser to drop.
func FuzzRewriteCID(f *testing.F) {
	f.Add(`<img src="cid:a@b"><style>x{background:url(cid:c)}</style>`)
	f.Add(`<p style='background:URL( "cid:x" )'>t</p><img src=cid:>`)
	f.Add("<svg><img src=\"cid:\x00\"></svg><!-- cid: -->")
	to := func(cid string) string { return "/p?" + strings.ReplaceAll(cid, `"`, "") }
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		if err := rewriteCID(&out, strings.NewReader(in), to); err != nil {
			t.Fatalf("rewriteCID: %v", err)
		}
		if !strings.Contains(strings.ToLower(in), "cid:") && out.String() != in {
			t.Fatalf("a document without cid: changed:\n%q\n%q", in, out.String())
		}
		z := html.NewTokenizer(&out)
		for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			for _, a := range tok.Attr {
				if v := strings.TrimSpace(a.Val); cidAttrs[a.Key] && len(v) > 4 && strings.EqualFold(v[:4], "cid:") {
					t.Fatalf("%s=%q left in %q", a.Key, a.Val, out.String())
				}
			}
		}
	})
}

// FuzzLinks: any HTML and text give links within the bounds, with their
// text in valid UTF-8, and only http(s) targets clickable.
func FuzzLinks(f *testing.F) {
	f.Add(`<a href="https://evil.example">https://bank.example</a> see www.x.example.`)
	f.Add(`<area href="javascript:x" alt="a"><a href=//h>x<img alt=y></a>`)
	f.Fuzz(func(t *testing.T, in string) {
		links, _ := htmlLinks(strings.NewReader(in))
		links = append(links, textLinks(in)...)
		if len(links) > 2*maxLinks {
			t.Fatalf("%d links", len(links))
		}
		for _, l := range links {
			if utf8.RuneCountInString(l.Text) > maxLinkText+1 {
				t.Fatalf("link text of %d characters", utf8.RuneCountInString(l.Text))
			}
			if l.Web && !(strings.HasPrefix(strings.ToLower(strings.TrimSpace(l.Target)), "http://") ||
				strings.HasPrefix(strings.ToLower(strings.TrimSpace(l.Target)), "https://")) {
				t.Fatalf("clickable non-web target %q", l.Target)
			}
		}
	})
}

// FuzzParseRecipients: whatever is typed, the recipients accepted can go
// in an SMTP command as they are.
func FuzzParseRecipients(f *testing.F) {
	f.Add("a@example.org\nb@example.org, c@example.org")
	f.Add("x@y\r\nRCPT TO:<z@w>")
	f.Fuzz(func(t *testing.T, in string) {
		rcpts, err := parseRecipients(in)
		if err != nil {
			return
		}
		if len(rcpts) == 0 || len(rcpts) > maxReleaseRecipients {
			t.Fatalf("%d recipients", len(rcpts))
		}
		for _, r := range rcpts {
			if strings.ContainsAny(r, "\r\n <>") || !utf8.ValidString(r) || !strings.Contains(r, "@") {
				t.Fatalf("recipient %q", r)
			}
		}
	})
}
