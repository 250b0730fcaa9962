package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// testPNG is a 12×8 PNG, the inline image of cidRaw.
func testPNG(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 12, 8))
	for x := range 12 {
		for y := range 8 {
			img.Set(x, y, color.RGBA{R: uint8(20 * x), G: 120, B: uint8(30 * y), A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// wrap64 is base64 in lines of 76.
func wrap64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return out.String() + s
}

// cidRaw is a newsletter as mail clients send one: HTML with an inline
// image by Content-ID, a text alternative, display names, and links whose
// text does and does not match their target.
func cidRaw(t testing.TB) string {
	return "From: Shop Support <support@shop.example>\r\n" +
		"To: =?utf-8?q?Ann_M=C3=BCller?= <ok@example.org>\r\n" +
		"Cc: \"Bob Builder\" <bob@example.org>\r\n" +
		"Subject: Your parcel\r\n" +
		"Date: Mon, 2 Dec 2024 10:00:00 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/related; boundary=REL\r\n\r\n" +
		"--REL\r\nContent-Type: multipart/alternative; boundary=ALT\r\n\r\n" +
		"--ALT\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Your parcel left the depot. Track it at https://track.shop.example/p/42.\r\n" +
		"--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		"<html><head><style>.hero{background:url(cid:logo@shop.example)}</style></head><body>" +
		"<p><img id=logo src=\"cid:logo@shop.example\" alt=\"Shop logo\"></p>" +
		"<p><a href=\"https://www.shop.example/orders/42\">www.shop.example/orders</a> " +
		"<a href=\"https://evil.example/login\">https://bank.example/login</a> " +
		"<a href=\"javascript:alert(1)\">Click</a> " +
		"<a href=\"https://shop.example/help\">Help</a></p>" +
		"<img src=\"cid:vector@shop.example\"></body></html>\r\n" +
		"--ALT--\r\n" +
		"--REL\r\nContent-Type: image/png; name=logo.png\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-ID: <logo@shop.example>\r\nContent-Disposition: inline; filename=logo.png\r\n\r\n" +
		wrap64(testPNG(t)) + "\r\n" +
		"--REL\r\nContent-Type: image/svg+xml\r\nContent-ID: <vector@shop.example>\r\n\r\n" +
		"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(5)</script></svg>\r\n" +
		"--REL--\r\n"
}

// waitIndexed waits until the message is found by a search for word:
// the index is written moments after the acceptance.
func waitIndexed(t *testing.T, s *stack, word, id string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		page, err := s.store.List(context.Background(), queue.Filter{Search: word})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) == 1 && page.Messages[0].ID == id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("search %q did not find %s", word, id)
		}
	}
}

// TestTabs: each tab shows its view of the message, marked current, with
// the message's data escaped.
func TestTabs(t *testing.T) {
	s := newStack(t, nil, true)
	id := s.sendRaw(t, cidRaw(t))
	s.waitStatus(t, id, queue.StatusDelivered)
	c := client(t)
	for tab, want := range map[string][]string{
		"":            {`id="tab-html" href=`, `<iframe sandbox title="HTML part of the message"`},
		"html":        {`<iframe sandbox title="HTML part of the message" class="html" src="/messages/` + id + `/html">`},
		"text":        {`<pre class="text">Your parcel left the depot.`},
		"links":       {"5 links", `<strong class="bad" id="link-warnings">2 with a warning</strong>`, "the text shows bank.example but the link goes to evil.example"},
		"headers":     {`<th scope="row">Subject</th><td>Your parcel</td>`, `<th scope="row">To</th><td>Ann Müller &lt;ok@example.org&gt;</td>`},
		"source":      {"\r\nFrom: Shop Support &lt;support@shop.example&gt;\r\n", `<pre class="source">`, `href="/messages/` + id + `/raw" download`},
		"attachments": {`logo.png</a> <span class="muted">(inline)</span>`, "<code>logo@shop.example</code>", "image/svg&#43;xml"},
		"nonsense":    {`<iframe sandbox`},
	} {
		resp, body := get(t, c, s.srv.URL+"/messages/"+id+"?tab="+tab)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("tab %q: %d", tab, resp.StatusCode)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("tab %q lacks %q", tab, w)
			}
		}
		current := tab
		if tab == "" || tab == "nonsense" {
			current = "html"
		}
		if n := strings.Count(body, `aria-current="page"`); n != 2 || !strings.Contains(body, `id="tab-`+current+`" href="/messages/`+id+`?tab=`+current+`#content" aria-current="page"`) {
			t.Errorf("tab %q: %d current marks, want the nav's and %s's", tab, n, current)
		}
	}
	// The header's people with their display names, above the tabs.
	_, body := get(t, c, s.srv.URL+"/messages/"+id)
	for _, w := range []string{`<dd id="hdr-from"><span class="mbox"><span class="name">Shop Support</span> <span class="addr">&lt;support@shop.example&gt;</span>`,
		`<span class="name">Ann Müller</span>`, `<span class="name">Bob Builder</span>`} {
		if !strings.Contains(body, w) {
			t.Errorf("detail lacks %q", w)
		}
	}
	// Remote images keep the tab; the source downloads byte for byte.
	_, body = get(t, c, s.srv.URL+"/messages/"+id+"?tab=links&remote=1")
	if !strings.Contains(body, `href="/messages/`+id+`?remote=1&amp;tab=links#content"`) {
		t.Error("tab links lose the remote-images choice")
	}
	resp, raw := get(t, c, s.srv.URL+"/messages/"+id+"/raw")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Disposition") != "attachment; filename="+id+".eml" ||
		!strings.HasSuffix(raw, strings.SplitN(cidRaw(t), "\r\n\r\n", 2)[1]) {
		t.Fatalf("raw: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Disposition"), len(raw))
	}
}

var cidSrc = regexp.MustCompile(`<img id="logo" src="(/messages/[^"]+)"`)

// TestInlineImages: the frame's HTML points cid: images at the parts'
// URLs, with a key that opens them without a session and only for this
// message; its CSP allows exactly those images; an SVG is never served as
// an image.
func TestInlineImages(t *testing.T) {
	s := newStack(t, []string{testToken}, true)
	id := s.sendRaw(t, cidRaw(t))
	other := s.sendRaw(t, cidRaw(t))
	s.waitStatus(t, id, queue.StatusDelivered)
	s.waitStatus(t, other, queue.StatusDelivered)
	c := client(t)
	login(t, s, c)
	resp, body := get(t, c, s.srv.URL+"/messages/"+id+"/html")
	csp := resp.Header.Get("Content-Security-Policy")
	host := strings.TrimPrefix(s.srv.URL, "http://")
	if want := "default-src 'none'; img-src data: " + host + "/messages/" + id + "/cid/; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'"; csp != want {
		t.Errorf("frame CSP %q, want %q", csp, want)
	}
	m := cidSrc.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `background:url("/messages/`+id+`/cid/logo@shop.example?k=`) ||
		!strings.Contains(body, `<img src="/messages/`+id+`/cid/vector@shop.example?k=`) {
		t.Fatalf("cid references not rewritten:\n%s", body)
	}
	src := strings.ReplaceAll(m[1], "&amp;", "&")
	// The frame's request carries no cookie: the key alone opens the part.
	resp, img := get(t, client(t), s.srv.URL+src)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || img != string(testPNG(t)) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("inline image: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(img))
	}
	u, _ := url.Parse(src)
	key := u.Query().Get("k")
	for name, p := range map[string]string{
		"no key":            "/messages/" + id + "/cid/logo@shop.example",
		"forged key":        "/messages/" + id + "/cid/logo@shop.example?k=" + key + "x",
		"expired key":       "/messages/" + id + "/cid/logo@shop.example?k=1." + strings.SplitN(key, ".", 2)[1],
		"another message's": "/messages/" + other + "/cid/logo@shop.example?k=" + key,
	} {
		if resp, _ := get(t, client(t), s.srv.URL+p); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, resp.StatusCode)
		}
	}
	// A logged-in user opens parts without a key; SVG is a download.
	resp, svg := get(t, c, s.srv.URL+"/messages/"+id+"/cid/vector@shop.example")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(svg, "<svg") {
		t.Fatalf("svg part: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	if resp, _ := get(t, c, s.srv.URL+"/messages/"+id+"/cid/nothing@here"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown cid: %d", resp.StatusCode)
	}
	// Remote images on: the CSP adds them, nothing else changes.
	resp, _ = get(t, c, s.srv.URL+"/messages/"+id+"/html?remote=1")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src data: "+host+"/messages/"+id+"/cid/ https: http:;") {
		t.Errorf("remote CSP %q", csp)
	}
}

// TestCIDSource: a Host or id a CSP cannot carry gives no source.
func TestCIDSource(t *testing.T) {
	for _, c := range []struct{ host, id, want string }{
		{"127.0.0.1:8025", "01a2-b3", "127.0.0.1:8025/messages/01a2-b3/cid/"},
		{"[::1]:8025", "x", "[::1]:8025/messages/x/cid/"},
		{"evil.example; script-src *", "x", ""},
		{"mail.example", "x y", ""},
		{"", "x", ""},
	} {
		if got := cidSource(c.host, c.id); got != c.want {
			t.Errorf("cidSource(%q, %q) = %q, want %q", c.host, c.id, got, c.want)
		}
	}
}

func TestRewriteCID(t *testing.T) {
	to := func(cid string) string { return "/p/" + url.PathEscape(cid) + "?k=1&x" }
	for in, want := range map[string]string{
		`<img src="cid:a@b">`:                          `<img src="/p/a@b?k=1&amp;x">`,
		`<IMG SRC='CID:a%40b' alt=x>`:                  `<img src="/p/a@b?k=1&amp;x" alt="x">`,
		`<img src="cid:a@b"/>`:                         `<img src="/p/a@b?k=1&amp;x"/>`,
		`<td background="cid:bg">x</td>`:               `<td background="/p/bg?k=1&amp;x">x</td>`,
		`<div style="background: url( 'cid:bg' )">`:    `<div style="background: url(&#34;/p/bg?k=1&amp;x&#34;)">`,
		`<style>p{background:url(cid:bg)}</style><p>`:  `<style>p{background:url("/p/bg?k=1&x")}</style><p>`,
		`<a href="cid:doc">x</a><img src="http://r/">`: `<a href="cid:doc">x</a><img src="http://r/">`,
		`<p class=a  id=b>cid:text stays</p>`:          `<p class=a  id=b>cid:text stays</p>`,
		`<p>cut</p><A`:                                 `<p>cut</p><A`,
	} {
		var b strings.Builder
		if err := rewriteCID(&b, strings.NewReader(in), to); err != nil || b.String() != want {
			t.Errorf("rewriteCID(%s) = %s, %v; want %s", in, b.String(), err, want)
		}
	}
}

func TestLinkChecks(t *testing.T) {
	links, err := htmlLinks(strings.NewReader(`<a href="https://evil.example/x">https://bank.example/login</a>
		<a href="https://www.shop.example/a">shop.example</a> <a href="http://203.0.113.9/">Pay</a>
		<a href="https://xn--pple-43d.example/">apple.example</a> <a href="javascript:alert(1)">Click <b>here</b></a>
		<a href="mailto:help@shop.example">help@shop.example</a> <a href="/relative">rel</a>
		<a href="https://shop.example/v"><img alt="Version 1.2"></a> <a name="anchor">no href</a>`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		text, host string
		warnings   []string
	}{
		{"https://bank.example/login", "evil.example", []string{"the text shows bank.example but the link goes to evil.example"}},
		{"shop.example", "www.shop.example", nil},
		{"Pay", "203.0.113.9", []string{"goes to a bare IP address, not a name"}},
		{"apple.example", "xn--pple-43d.example", []string{"an internationalised host name (xn--pple-43d.example), which can imitate another",
			"the text shows apple.example but the link goes to xn--pple-43d.example"}},
		{"Click here", "", []string{"a javascript: link runs or opens something on the reader's computer"}},
		{"help@shop.example", "", nil},
		{"rel", "", []string{"a relative link, which leads nowhere from an email"}},
		{"Version 1.2", "shop.example", nil},
	}
	if len(links) != len(want) {
		t.Fatalf("%d links, want %d: %+v", len(links), len(want), links)
	}
	for i, w := range want {
		l := links[i]
		if l.Text != w.text || l.Host != w.host || strings.Join(l.Warnings, "|") != strings.Join(w.warnings, "|") {
			t.Errorf("link %d: %+v, want %+v", i, l, w)
		}
	}
	if !links[1].Web || links[4].Web {
		t.Error("only http(s) links are clickable")
	}
	tl := textLinks("See https://a.example/x, or www.b.example. Not ftp://c.example!")
	if len(tl) != 2 || tl[0].Target != "https://a.example/x" || tl[1].Target != "http://www.b.example" || tl[0].Source != "text" {
		t.Errorf("text links %+v", tl)
	}
}

// TestDisplayNamesAndSearch: the list and the inbox show the header's
// display names once the message is indexed, and find it by a word of
// its text and by a display name.
func TestDisplayNamesAndSearch(t *testing.T) {
	s := newStack(t, nil, true)
	id := s.sendRaw(t, cidRaw(t))
	plain := s.send(t, `{"from":"shop@example.com","to":["ok@example.org"],"subject":"Other","text":"Nothing in common."}`)
	s.waitStatus(t, id, queue.StatusDelivered)
	s.waitStatus(t, plain, queue.StatusDelivered)
	waitIndexed(t, s, "depot", id)
	waitIndexed(t, s, "common", plain)
	c := client(t)
	for _, p := range []string{"/messages", "/inbox", "/live/list"} {
		_, body := get(t, c, s.srv.URL+p)
		for _, w := range []string{`<span class="name">Shop Support</span> <span class="addr">&lt;support@shop.example&gt;</span>`,
			`<span class="name">Ann Müller</span> <span class="addr">&lt;ok@example.org&gt;</span>`} {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", p, w)
			}
		}
	}
	for _, q := range []string{"depot", "müller", "Ann Muller", "support@shop", "PARCEL"} {
		for _, p := range []string{"/messages?q=", "/inbox?q="} {
			_, body := get(t, c, s.srv.URL+p+url.QueryEscape(q))
			if !strings.Contains(body, `data-id="`+id+`"`) || strings.Contains(body, `data-id="`+plain+`"`) {
				t.Errorf("%s%s: want only %s", p, q, id)
			}
		}
	}
	for _, p := range []string{"/messages?q=%21%21", "/inbox?q=%21%21"} {
		if resp, body := get(t, c, s.srv.URL+p); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "no letters or digits") {
			t.Errorf("%s: %d, want 400 saying why", p, resp.StatusCode)
		}
	}
}
