package message

import (
	"strings"
)

// The encoder cases of issue 13: every one goes through net/mail +
// mime/multipart, emersion/go-message and Python's email package
// (TestRoundTrip and TestRoundTripPython), which must each decode the
// exact names, subject, filenames and bodies.
const (
	// longDE has long words: a cut inside one shows as "Überweisu ngs…"
	// in Python, which keeps the space between encoded words of a phrase.
	longDE = "Überweisungsbestätigungsformular der Buchhaltungsabteilung Müller"
	// longJA needs two encoded words whatever is done: the cut must fall
	// at one of its spaces.
	longJA  = "株式会社サンプル 営業部 東京本社 山田 太郎"
	fakeEW  = "=?utf-8?q?fake?="
	combine = "Cafe\u0301 " // é as e + COMBINING ACUTE ACCENT
	family  = "👩\u200d👩\u200d👧\u200d👦"
)

func encoderCases() []rtCase {
	return []rtCase{
		{name: "word boundaries, German", from: Address{longDE, "buchhaltung@example.de"},
			to:      []Address{{longDE + " GmbH & Co. KG", "x@example.de"}, {"Jörg Müller", "j@example.de"}},
			subject: "Überweisungsbestätigungsformular für die Buchhaltungsabteilung der Müller GmbH & Co. KG – März 2026",
			text:    "Grüße",
			atts: []attSpec{{filename: "Überweisungsbestätigungsformular-Buchhaltungsabteilung-März-2026.pdf",
				ctype: "application/pdf", data: pdf}},
			structure: "mixed(text/plain,application/pdf)"},
		{name: "word boundaries, Japanese", from: Address{longJA, "yamada@example.jp"},
			to:      []Address{{"山田 太郎", "yamada@example.jp"}, {longJA + " 様", "sama@example.jp"}},
			subject: "【重要】" + longJA + " 様 ご請求書の送付について（2026年3月分）",
			atts: []attSpec{{filename: "ご請求書 2026年3月分 株式会社サンプル 営業部 東京本社.pdf",
				ctype: "application/pdf", data: pdf}},
			structure: "mixed(application/pdf)"},
		{name: "looks like encoded words", from: Address{fakeEW, "fake@example.com"},
			to: []Address{{`"` + fakeEW + `"`, "quoted@example.com"}, {"Bob " + fakeEW + " Smith", "bob@example.com"},
				{"=?utf-8?b?" + strings.Repeat("QUJD", 20) + "?=", "long@example.com"}},
			subject: fakeEW, text: "x",
			headers: [][2]string{{"X-Fake", "Ünïcode " + fakeEW}},
			atts: []attSpec{{filename: fakeEW + ".txt", ctype: "text/plain", data: []byte("a")},
				{filename: "=?utf-8?b?" + strings.Repeat("QUJD", 20) + "?=.pdf", ctype: "application/pdf", data: pdf},
				{filename: fakeEW, ctype: "application/pdf", data: pdf}},
			structure: "mixed(text/plain,text/plain,application/pdf,application/pdf)"},
		{name: "long single tokens", subject: strings.Repeat("x", 150), text: "x",
			headers: [][2]string{
				{"X-Token", strings.Repeat("y", 150)},
				{"X-A-Rather-Long-Custom-Header-Name-For-The-First-Line", "Ünïcödé value with words that must wrap over several lines of the field"},
				{"X-Another-Very-Long-Custom-Header-Name-To-Leave-No-Room-At-All", "Überweisungsbestätigungsformular"},
			},
			structure: "text/plain"},
		{name: "user-perceived characters", from: Address{strings.Repeat(combine, 12), "cafe@example.fr"},
			to: []Address{{strings.Repeat(family, 8), "family@example.com"},
				{strings.Repeat("🇯🇵🇫🇷🇩🇪", 6), "flags@example.com"},
				{strings.Repeat("👍🏽", 15), "thumbs@example.com"}},
			subject: strings.Repeat("e\u0301", 60) + " " + strings.Repeat("\u1100\u1161\u11a8", 30),
			text:    strings.Repeat(combine, 3),
			atts: []attSpec{{filename: strings.Repeat(family, 6) + ".png", ctype: "image/png", data: png},
				{filename: strings.Repeat("e\u0301", 40) + ".txt", ctype: "text/plain", data: []byte("é")}},
			structure: "mixed(text/plain,image/png,text/plain)"},
	}
}
