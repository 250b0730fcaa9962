package message

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/idna"
)

type attSpec struct {
	filename, ctype, cid string
	data                 []byte
	inline               bool
}

type rtCase struct {
	name       string
	from       Address
	to, cc     []Address
	subject    string
	text, html string
	atts       []attSpec
	headers    [][2]string
	allow8bit  bool
	structure  string // expected MIME tree, as parseStd renders it
}

func (c rtCase) message() *Message {
	m := &Message{
		From: c.from, To: c.to, Cc: c.cc, Subject: c.subject, Text: c.text, HTML: c.html,
		Headers: c.headers, Allow8Bit: c.allow8bit,
		Bcc:  []Address{{"Hidden Person", "hidden.bcc@example.org"}},
		Date: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	if m.From == (Address{}) {
		m.From = Address{"Sender", "sender@example.com"}
	}
	if m.To == nil {
		m.To = []Address{{"Rcpt", "rcpt@example.net"}}
	}
	for _, a := range c.atts {
		m.Attachments = append(m.Attachments, Attachment{
			Filename: a.filename, ContentType: a.ctype, ContentID: a.cid,
			Inline: a.inline, Content: bytes.NewReader(a.data),
		})
	}
	return m
}

// wantLeaves is the order parts must come out in: text, html, inline
// resources (when there is HTML to show them), then the rest.
func (c rtCase) wantLeaves() []leaf {
	var out []leaf
	text := c.text
	if text == "" && c.html != "" {
		text = htmlToText(c.html)
	}
	if text != "" || c.html != "" || len(c.atts) == 0 {
		out = append(out, leaf{ctype: "text/plain", data: normText(text)})
	}
	if c.html != "" {
		out = append(out, leaf{ctype: "text/html", data: normText(c.html)})
	}
	var rest []leaf
	for _, a := range c.atts {
		l := leaf{ctype: a.ctype, filename: a.filename, data: string(a.data), disp: "attachment"}
		if a.inline {
			l.disp = "inline"
		}
		if a.cid != "" {
			l.cid = "<" + a.cid + ">"
		}
		if a.inline && c.html != "" {
			out = append(out, l)
		} else {
			rest = append(rest, l)
		}
	}
	return append(out, rest...)
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var (
	png   = append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(300, 1)...)
	pdf   = []byte("%PDF-1.4\n% text\n")
	bin   = randomBytes(100_000, 2)
	long  = strings.Repeat("quarterly-report-", 13) + ".pdf" // 225 chars
	names = map[string]Address{
		"zh": {"张伟", "zhang@example.cn"},
		"ja": {"山田 太郎", "yamada@example.jp"},
		"ar": {"محمد الأحمد", "mohammed@example.sa"},
		"he": {"דוד כהן", "david@example.co.il"},
		"em": {"Party 🎉 Bot", "bot@example.com"},
	}
)

func rtCases() []rtCase {
	html := `<h1>Title</h1><p>Hello&nbsp;<b>world</b> &amp; friends</p><img src="cid:logo.png" alt="logo">`
	return []rtCase{
		{name: "text only", subject: "Plain hello", text: "Hello,\nworld.\n", structure: "text/plain"},
		{name: "html only", subject: "HTML", html: html, structure: "alternative(text/plain,text/html)"},
		{name: "text and html", text: "Hi", html: "<p>Hi</p>", structure: "alternative(text/plain,text/html)"},
		{name: "html inline", html: html, atts: []attSpec{{filename: "logo.png", ctype: "image/png", cid: "logo.png", data: png, inline: true}},
			structure: "related(alternative(text/plain,text/html),image/png)"},
		{name: "everything", text: "t", html: html, atts: []attSpec{
			{filename: "logo.png", ctype: "image/png", cid: "logo.png", data: png, inline: true},
			{filename: "report.pdf", ctype: "application/pdf", data: pdf}},
			structure: "mixed(related(alternative(text/plain,text/html),image/png),application/pdf)"},
		{name: "html and attachment", html: "<p>report attached</p>", atts: []attSpec{{filename: "report.pdf", ctype: "application/pdf", data: pdf}},
			structure: "mixed(alternative(text/plain,text/html),application/pdf)"},
		{name: "inline with generated cid", text: "t", html: "<p>x</p>", atts: []attSpec{{filename: "a.png", ctype: "image/png", data: png, inline: true}},
			structure: "related(alternative(text/plain,text/html),image/png)"},
		{name: "many recipients", to: manyRecipients(), cc: manyRecipients()[:7], text: "x", structure: "text/plain"},
		{name: "empty body", subject: "nothing to say", structure: "text/plain"},
		{name: "inline without html", text: "see image", atts: []attSpec{{filename: "logo.png", ctype: "image/png", cid: "logo.png", data: png, inline: true}},
			structure: "mixed(text/plain,image/png)"},
		{name: "attachment only", atts: []attSpec{{filename: "a.bin", ctype: "application/octet-stream", data: bin}},
			structure: "mixed(application/octet-stream)"},
		{name: "text and attachments", text: "files", atts: []attSpec{
			{filename: "empty.txt", ctype: "text/plain", data: nil},
			{filename: "one.bin", ctype: "application/octet-stream", data: []byte{0}},
			{filename: "binary.dat", ctype: "application/octet-stream", data: bin}},
			structure: "mixed(text/plain,text/plain,application/octet-stream,application/octet-stream)"},
		{name: "long filename", text: "x", atts: []attSpec{{filename: long, ctype: "application/pdf", data: pdf}},
			structure: "mixed(text/plain,application/pdf)"},
		{name: "non-ascii filenames", text: "x", atts: []attSpec{
			{filename: "报告 2026年 第一季度.pdf", ctype: "application/pdf", data: pdf},
			{filename: strings.Repeat("日本語のファイル名", 25) + ".txt", ctype: "text/plain", data: []byte("hi")},
			{filename: "emoji 🎉 \"quoted\" \\ name.txt", ctype: "text/plain", data: []byte("hi")},
			{filename: "تقرير.pdf", ctype: "application/pdf", data: pdf}},
			structure: "mixed(text/plain,application/pdf,text/plain,text/plain,application/pdf)"},
		{name: "chinese", from: names["zh"], to: []Address{names["zh"]}, subject: "你好，世界！这是一个很长的主题行，用来测试折叠和编码是否正确处理多字节字符",
			text: "中文正文。\n第二行。", structure: "text/plain"},
		{name: "japanese", from: names["ja"], to: []Address{names["ja"], names["zh"]}, subject: "こんにちは世界、これは日本語の件名です。長い件名は折り返されます。",
			text: "日本語の本文", html: "<p>日本語の<b>本文</b></p>", structure: "alternative(text/plain,text/html)"},
		{name: "emoji", from: names["em"], to: []Address{names["em"]}, subject: "🎉🎊 Party time 🥳 " + strings.Repeat("🍰", 30),
			text: "Cake 🍰 for everyone", structure: "text/plain"},
		{name: "arabic", from: names["ar"], to: []Address{names["ar"]}, cc: []Address{names["he"]}, subject: "مرحبا بالعالم — تقرير شهري",
			text: "نص الرسالة", structure: "text/plain"},
		{name: "hebrew", from: names["he"], to: []Address{names["he"]}, subject: "שלום עולם, דוח חודשי", text: "גוף ההודעה", structure: "text/plain"},
		{name: "8bit", subject: "8 bit", text: "Grüße aus Köln — ça va?", allow8bit: true, structure: "text/plain"},
		{name: "long line", text: strings.Repeat("abcdefghij ", 200), structure: "text/plain"},
		{name: "control bytes", text: "nul\x00byte\x01\x02\x03\x04", structure: "text/plain"},
		{name: "lone cr and lf", text: "a\rb\nc\r\nd", structure: "text/plain"},
		{name: "quoted names and custom headers", to: []Address{{"Doe, Jane", "jane@example.com"}, {`Bob "the builder"`, "bob@example.com"}},
			text: "x", headers: [][2]string{{"X-Campaign", "spring-2026"}, {"X-Note", "café au lait"}, {"List-Unsubscribe", "<https://example.com/u?id=" + strings.Repeat("a", 90) + ">"}},
			structure: "text/plain"},
		{name: "idn and utf8 local", from: Address{"Bücher", "info@bücher.example"}, to: []Address{{"", "δοκιμή@παράδειγμα.δοκιμή"}, {"", "user@xn--bcher-kva.example"}},
			text: "x", structure: "text/plain"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range append(rtCases(), encoderCases()...) {
		t.Run(c.name, func(t *testing.T) {
			m := c.message()
			raw := compose(t, m)
			p := parseStd(t, raw)
			if p.structure != c.structure {
				t.Errorf("structure %s, want %s", p.structure, c.structure)
			}
			checkHeaders(t, m, p)
			want := c.wantLeaves()
			compareLeaves(t, "net/mail", p.leaves, want, true)

			subject, to, gl := parseGoMessage(t, raw)
			if subject != c.message().Subject {
				t.Errorf("go-message subject %q, want %q", subject, m.Subject)
			}
			if len(to) != len(m.To) {
				t.Fatalf("go-message To has %d addresses, want %d", len(to), len(m.To))
			}
			for i, a := range m.To {
				if to[i].Name != a.Name || to[i].Address != wantEmail(t, a.Email) {
					t.Errorf("go-message To[%d] = %q <%s>, want %q <%s>", i, to[i].Name, to[i].Address, a.Name, wantEmail(t, a.Email))
				}
			}
			compareLeaves(t, "go-message", gl, want, false)
		})
	}
}

func compareLeaves(t *testing.T, who string, got, want []leaf, checkName bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d parts %s, want %d %s", who, len(got), describe(got), len(want), describe(want))
	}
	for i, w := range want {
		g := got[i]
		if g.data != w.data {
			t.Errorf("%s: part %d (%s) body differs: %d bytes %.60q, want %d bytes %.60q", who, i, w.ctype, len(g.data), g.data, len(w.data), w.data)
		}
		if w.ctype != "" && g.ctype != w.ctype {
			t.Errorf("%s: part %d type %q, want %q", who, i, g.ctype, w.ctype)
		}
		if g.filename != w.filename {
			t.Errorf("%s: part %d filename %q, want %q", who, i, g.filename, w.filename)
		}
		if checkName && g.name != w.filename {
			t.Errorf("%s: part %d name= %q, want %q", who, i, g.name, w.filename)
		}
		if w.disp != "" && g.disp != w.disp {
			t.Errorf("%s: part %d disposition %q, want %q", who, i, g.disp, w.disp)
		}
		if w.disp == "inline" && !strings.HasPrefix(g.cid, "<") {
			t.Errorf("%s: inline part %d has Content-ID %q", who, i, g.cid)
		}
		if w.cid != "" && g.cid != w.cid {
			t.Errorf("%s: part %d Content-ID %q, want %q", who, i, g.cid, w.cid)
		}
	}
}

// wantEmail is how an address must read in a header: A-label domains
// unless the local part itself needs UTF-8.
func wantEmail(t *testing.T, email string) string {
	at := strings.LastIndexByte(email, '@')
	local, domain := email[:at], email[at+1:]
	if isASCII(local) {
		d, err := idna.ToASCII(domain)
		if err != nil {
			t.Fatal(err)
		}
		domain = d
	}
	return local + "@" + domain
}

func checkHeaders(t *testing.T, m *Message, p *parsed) {
	t.Helper()
	subj, err := dec.DecodeHeader(p.header.Get("Subject"))
	if err != nil || subj != m.Subject {
		t.Errorf("Subject %q (%v), want %q", subj, err, m.Subject)
	}
	for _, f := range []struct {
		name string
		want []Address
	}{{"From", []Address{m.From}}, {"To", m.To}, {"Cc", m.Cc}} {
		if len(f.want) == 0 {
			continue
		}
		got, err := p.header.AddressList(f.name)
		if err != nil {
			t.Fatalf("%s: %v (%q)", f.name, err, p.header.Get(f.name))
		}
		if len(got) != len(f.want) {
			t.Fatalf("%s: %d addresses, want %d", f.name, len(got), len(f.want))
		}
		for i, w := range f.want {
			if got[i].Name != w.Name || got[i].Address != wantEmail(t, w.Email) {
				t.Errorf("%s[%d] = %q <%s>, want %q <%s>", f.name, i, got[i].Name, got[i].Address, w.Name, wantEmail(t, w.Email))
			}
		}
	}
	if p.header.Get("Bcc") != "" || strings.Contains(p.rawHeader, "hidden.bcc") || strings.Contains(p.rawHeader, "Hidden Person") {
		t.Errorf("Bcc leaked into the header:\n%s", p.rawHeader)
	}
	for _, h := range m.Headers {
		got, err := dec.DecodeHeader(p.header.Get(h[0]))
		if err != nil || got != h[1] {
			t.Errorf("%s = %q (%v), want %q", h[0], got, err, h[1])
		}
	}
	if p.header.Get("MIME-Version") != "1.0" {
		t.Errorf("MIME-Version %q", p.header.Get("MIME-Version"))
	}
	if d, err := p.header.Date(); err != nil || !d.Equal(m.Date) {
		t.Errorf("Date %v (%v), want %v", d, err, m.Date)
	}
	id := p.header.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@"+domainOf(m.From)+">") {
		t.Errorf("Message-ID %q does not carry the sender's domain", id)
	}
}

func manyRecipients() []Address {
	var out []Address
	for i := range 40 {
		name := []string{"", "Plain Name", "Doe, Jane", "张伟 the " + strings.Repeat("long ", i%5) + "name", "🎉"}[i%5]
		out = append(out, Address{name, "user" + strings.Repeat("x", i) + "@example.com"})
	}
	return out
}
