package message

import (
	"strings"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>Hello <b>world</b></p><p>Second&nbsp;para &amp; more</p>", "Hello world\n\nSecond para & more\n"},
		{"line one<br>line two<br/>line three", "line one\nline two\nline three\n"},
		{`<p>See <a href="https://example.com/x">the docs</a>.</p>`, "See the docs (https://example.com/x).\n"},
		{`<a href="https://example.com/">https://example.com/</a>`, "https://example.com/\n"},
		{`<a href="mailto:a@example.com">a@example.com</a>`, "a@example.com\n"},
		{`<a href="#top">top</a>`, "top\n"},
		{"<ul><li>one</li><li>two</li></ul><ol><li>first</li><li>second</li></ol>", "- one\n- two\n\n1. first\n2. second\n"},
		{"<ul><li>a<ul><li>nested</li></ul></li></ul>", "- a\n  - nested\n"},
		{"<head><title>T</title><style>p{}</style></head><script>alert(1)</script><p>body</p>", "body\n"},
		{"<pre>  keep\n    spacing</pre>", "  keep\n    spacing\n"},
		{"<h1>Title</h1>text   with\n\n  spaces", "Title\n\ntext with spaces\n"},
		{`<img src="cid:logo" alt="Logo"> caption`, "Logo caption\n"},
		{"<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>", "a b\nc d\n"},
		{"&lt;not a tag&gt; &eacute;t&eacute; &#128512;", "<not a tag> été 😀\n"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := htmlToText(tt.in); got != tt.want {
			t.Errorf("htmlToText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// TestHTMLToTextHostile feeds deeply nested markup: the output must stay
// proportional to the input.
func TestHTMLToTextHostile(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("<a href='https://example.com/'>x ", 20000),
		strings.Repeat("<ul><li>x", 20000),
		strings.Repeat("<pre>", 20000) + "x" + strings.Repeat("<script>", 20000),
	} {
		out := htmlToText(in)
		if len(out) > 4*len(in) {
			t.Errorf("%d bytes of HTML gave %d bytes of text", len(in), len(out))
		}
	}
}
