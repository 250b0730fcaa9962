package api

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"unicode"

	"golang.org/x/net/html"
)

// Bounds of the links a content answer lists: a link longer than
// maxLinkLen is not one anybody follows, and a message with more than
// maxLinks distinct links is cut there (links_truncated says so).
const (
	maxLinks   = 500
	maxLinkLen = 2048
	// maxHTMLToken bounds one token of the HTML tokenizer (a tag with its
	// attributes, a run of text); past it the rest of the HTML part is
	// not scanned for links.
	maxHTMLToken = 1 << 20
)

// linkSet gathers distinct links in the order they are first seen.
type linkSet struct {
	list      []string
	seen      map[string]bool
	truncated bool
}

func (s *linkSet) add(u string) {
	if u == "" || len(u) > maxLinkLen || s.seen[u] {
		return
	}
	if len(s.list) == maxLinks {
		s.truncated = true
		return
	}
	if s.seen == nil {
		s.seen = make(map[string]bool)
	}
	s.seen[u] = true
	s.list = append(s.list, u)
}

// scanText adds every http or https URL in plain text r, streaming: a
// URL runs from its scheme to the first space, control character or
// one of <>"`, without the trailing punctuation that ends a sentence
// and without a closing bracket it did not open.
func scanText(r io.Reader, links *linkSet) error {
	br := bufio.NewReaderSize(r, 32<<10)
	var word []byte
	long := false
	for {
		c, _, err := br.ReadRune()
		if err != nil {
			if !long {
				textWord(word, links)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if unicode.IsSpace(c) || unicode.IsControl(c) || strings.ContainsRune("<>\"`", c) {
			if !long {
				textWord(word, links)
			}
			word, long = word[:0], false
			continue
		}
		if len(word) >= 2*maxLinkLen {
			long = true
			continue
		}
		word = append(word, string(c)...)
	}
}

// textWord adds the URL that starts somewhere in word, if one does.
func textWord(word []byte, links *linkSet) {
	s := string(word)
	lower := strings.ToLower(s)
	i := strings.Index(lower, "http://")
	if j := strings.Index(lower, "https://"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return
	}
	links.add(trimURL(s[i:]))
}

// trimURL drops what follows a URL in prose: sentence punctuation, and a
// closing bracket or quote the URL did not open ("(see https://x.test/a)").
func trimURL(u string) string {
	for u != "" {
		last := u[len(u)-1]
		switch {
		case strings.IndexByte(".,;:!?'*", last) >= 0:
			u = u[:len(u)-1]
			continue
		case last == ')' && strings.Count(u, "(") < strings.Count(u, ")"),
			last == ']' && strings.Count(u, "[") < strings.Count(u, "]"),
			last == '}' && strings.Count(u, "{") < strings.Count(u, "}"):
			u = u[:len(u)-1]
			continue
		}
		break
	}
	if strings.HasSuffix(strings.ToLower(u), "://") {
		return ""
	}
	return u
}

// linkAttrs are the attributes whose values are links, by element.
var linkAttrs = map[string]string{"a": "href", "area": "href", "img": "src"}

// scanHTML adds the links of an HTML part, streaming: the href of every
// a and area, the src of every img, and the URLs in its text (scanText's
// rule), in document order. Only absolute http, https and mailto links
// count: a relative link has no base to resolve against, and cid: and
// data: URLs are parts of the message itself, not links.
func scanHTML(r io.Reader, links *linkSet) error {
	z := html.NewTokenizer(r)
	z.SetMaxBuf(maxHTMLToken)
	for {
		switch z.Next() {
		case html.ErrorToken:
			err := z.Err()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, html.ErrBufferExceeded) {
				links.truncated = true
				return nil
			}
			return err
		case html.TextToken:
			if err := scanText(strings.NewReader(string(z.Text())), links); err != nil {
				return err
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			want := linkAttrs[string(name)]
			for hasAttr && want != "" {
				var key, val []byte
				key, val, hasAttr = z.TagAttr()
				if string(key) == want {
					links.add(attrURL(string(val)))
				}
			}
		}
	}
}

// attrURL is the absolute link an attribute's value holds, as a browser
// reads it (outer white space trimmed, tabs and line breaks inside
// removed), or "" when it holds none worth listing.
func attrURL(v string) string {
	v = strings.TrimSpace(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(v))
	scheme, _, ok := strings.Cut(v, ":")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		if !strings.HasPrefix(v[len(scheme)+1:], "//") || len(v) == len(scheme)+3 {
			return ""
		}
		return v
	case "mailto":
		return v
	}
	return ""
}
