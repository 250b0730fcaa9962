package message

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText derives the text/plain alternative of an HTML body: what a
// person would read, with paragraphs as blank lines, list items as
// "- " or "1. " lines, and link targets kept in parentheses, since a text
// reader cannot follow an <a>.
func htmlToText(src string) string {
	c := &textConv{}
	z := html.NewTokenizer(strings.NewReader(src))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.TextToken:
			if c.skip == 0 {
				c.text(tok.Data)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			c.start(tok, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			c.end(tok)
		}
	}
	return c.result()
}

// textConv accumulates the text version while the tokens stream past.
type textConv struct {
	b       strings.Builder
	skip    int         // inside <script>, <style>, <head>…: nothing shows
	pre     int         // inside <pre>: whitespace is kept
	breaks  int         // line breaks owed before the next text
	space   bool        // a space is owed before the next text
	links   []string    // href of each open <a>, "" when not worth showing
	lists   []int       // item counter per open list; -1 for <ul>
	linkTxt []*linkText // text written inside each open <a>
}

// linkText collects the text of an open link, but only as much of it as
// closeLink needs to compare it with the href: leading white space is
// dropped and collecting stops at limit octets, so that text piling up in
// a link (or a huge one) costs linear time and bounded memory.
type linkText struct {
	b     strings.Builder
	limit int
	long  bool // non-space text went past limit: it cannot equal the href
}

func (l *linkText) add(s string) {
	if l.long {
		return
	}
	if l.b.Len() == 0 {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	room := l.limit - l.b.Len()
	if len(s) <= room {
		l.b.WriteString(s)
		return
	}
	cut := max(room, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	l.b.WriteString(s[:cut])
	// Trailing white space is trimmed before the comparison anyway.
	if strings.TrimLeftFunc(s[cut:], unicode.IsSpace) != "" {
		l.long = true
	}
}

// invisible elements carry no readable text.
var invisible = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Head: true, atom.Title: true,
	atom.Template: true, atom.Noscript: true,
}

// blockBreaks is how many line breaks an element puts around itself:
// 2 for a paragraph-like block, 1 for a line-like one.
var blockBreaks = map[atom.Atom]int{
	atom.P: 2, atom.Div: 1, atom.H1: 2, atom.H2: 2, atom.H3: 2, atom.H4: 2,
	atom.H5: 2, atom.H6: 2, atom.Blockquote: 2, atom.Pre: 2, atom.Table: 2,
	atom.Ul: 2, atom.Ol: 2, atom.Tr: 1, atom.Section: 2, atom.Article: 2,
	atom.Header: 1, atom.Footer: 1, atom.Dl: 2, atom.Dt: 1, atom.Dd: 1,
	atom.Address: 1, atom.Hr: 1, atom.Form: 1, atom.Figure: 2,
}

func (c *textConv) start(tok html.Token, selfClosing bool) {
	a := tok.DataAtom
	if invisible[a] {
		if !selfClosing {
			c.skip++
		}
		return
	}
	if c.skip > 0 {
		return
	}
	c.need(c.breaksFor(a))
	switch a {
	case atom.Br:
		c.b.WriteString("\n")
		c.breaks, c.space = 0, false
	case atom.Hr:
		c.need(1)
		c.text("----")
		c.need(1)
	case atom.Pre:
		c.pre++
	case atom.Ul:
		c.lists = append(c.lists, -1)
	case atom.Ol:
		c.lists = append(c.lists, 0)
	case atom.Li:
		c.item()
	case atom.Td, atom.Th:
		c.space = true
	case atom.Img:
		if alt := attr(tok, "alt"); alt != "" {
			c.text(alt)
		}
	case atom.A:
		// Links do not nest (browsers close the open one), and keeping
		// the stack flat keeps hostile input from costing O(n²).
		c.closeLink()
		href := attr(tok, "href")
		c.links = append(c.links, href)
		c.linkTxt = append(c.linkTxt, &linkText{limit: len(href)})
	}
}

func (c *textConv) end(tok html.Token) {
	a := tok.DataAtom
	if invisible[a] {
		if c.skip > 0 {
			c.skip--
		}
		return
	}
	if c.skip > 0 {
		return
	}
	switch a {
	case atom.Pre:
		c.pre = max(0, c.pre-1)
	case atom.Ul, atom.Ol:
		if len(c.lists) > 0 {
			c.lists = c.lists[:len(c.lists)-1]
		}
	case atom.A:
		c.closeLink()
	}
	c.need(c.breaksFor(a))
}

// breaksFor is the line breaks owed around element a; a list nested in a
// list item continues it rather than starting a paragraph.
func (c *textConv) breaksFor(a atom.Atom) int {
	n := blockBreaks[a]
	if (a == atom.Ul || a == atom.Ol) && len(c.lists) > 0 && n > 1 {
		n = 1
	}
	return n
}

const maxIndent = 8

// item starts a list item with its bullet or number, indented by depth.
func (c *textConv) item() {
	c.need(1)
	bullet := "- "
	if n := len(c.lists); n > 0 && c.lists[n-1] >= 0 {
		c.lists[n-1]++
		bullet = strconv.Itoa(c.lists[n-1]) + ". "
	}
	c.flushBreaks()
	// Indentation stops growing at maxIndent levels, so that deeply
	// nested lists cannot make the output quadratic in the input.
	c.b.WriteString(strings.Repeat("  ", min(maxIndent, max(0, len(c.lists)-1))) + bullet)
	c.space = false
}

// closeLink appends the target of the link just closed, unless the text
// already says it or it goes nowhere a reader could follow.
func (c *textConv) closeLink() {
	n := len(c.links)
	if n == 0 {
		return
	}
	href, txt := c.links[n-1], c.linkTxt[n-1]
	c.links, c.linkTxt = c.links[:n-1], c.linkTxt[:n-1]
	href = strings.TrimSpace(href)
	if href == "" || strings.HasPrefix(href, "#") || strings.HasPrefix(strings.ToLower(href), "javascript:") {
		return
	}
	shown := strings.TrimSpace(txt.b.String())
	if !txt.long && (shown == href || "mailto:"+shown == href) {
		return
	}
	if shown == "" && !txt.long {
		c.text(href)
		return
	}
	c.space = true
	c.text("(" + href + ")")
}

func (c *textConv) need(n int) { c.breaks = max(c.breaks, n) }

func (c *textConv) flushBreaks() {
	if c.b.Len() > 0 && c.breaks > 0 {
		c.b.WriteString(strings.Repeat("\n", c.breaks))
	}
	c.breaks, c.space = 0, false
}

// text writes character data, collapsing white space as a browser does
// (except inside <pre>). Entities are already decoded by the tokenizer.
func (c *textConv) text(s string) {
	if c.pre > 0 {
		c.flushBreaks()
		c.write(s)
		return
	}
	words := strings.Fields(s)
	if len(words) == 0 {
		if s != "" {
			c.space = true
		}
		return
	}
	lead := s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '\f'
	if c.breaks > 0 {
		c.flushBreaks()
	} else if (c.space || lead) && c.b.Len() > 0 && !strings.HasSuffix(c.b.String(), "\n") {
		c.write(" ")
	}
	c.write(strings.Join(words, " "))
	last := s[len(s)-1]
	c.space = last == ' ' || last == '\t' || last == '\n' || last == '\r' || last == '\f'
}

func (c *textConv) write(s string) {
	c.b.WriteString(s)
	for _, l := range c.linkTxt {
		l.add(s)
	}
}

// result trims trailing spaces from lines and blank lines from both ends.
func (c *textConv) result() string {
	lines := strings.Split(c.b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\u00a0")
	}
	out := strings.Trim(strings.Join(lines, "\n"), "\n")
	if out == "" {
		return ""
	}
	return out + "\n"
}

func attr(tok html.Token, name string) string {
	for _, a := range tok.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}
