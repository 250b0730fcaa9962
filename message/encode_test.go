package message

import (
	"mime"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkEncodedHeader asserts the properties every encoded header must
// have: it decodes back to value, lines stay within 78 columns unless a
// single token cannot be broken, and no encoded word holds a partial
// UTF-8 sequence.
func checkEncodedHeader(t *testing.T, name, value, out string) {
	t.Helper()
	if !strings.HasSuffix(out, "\r\n") || !strings.HasPrefix(out, name+":") {
		t.Fatalf("malformed field %q", out)
	}
	body := strings.TrimSuffix(out, "\r\n")
	lines := strings.Split(body, "\r\n")
	for i, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("bare CR or LF in %q", out)
		}
		if i > 0 && !strings.HasPrefix(l, " ") {
			t.Fatalf("continuation line without leading space in %q", out)
		}
		if len(l) > foldWidth && !unbreakable(l) {
			t.Fatalf("line %d is %d columns: %q", i, len(l), l)
		}
		if encodedWord.MatchString(l) && len(l) > ewLineWidth && !longNameLine(l) {
			t.Fatalf("line %d holds an encoded word and is %d columns: %q", i, len(l), l)
		}
		if i == 0 && strings.TrimRight(l, " ") == name+":" && len(lines) > 1 {
			t.Fatalf("folded right after the colon: %q", out)
		}
		for _, w := range strings.Fields(l) {
			if strings.HasPrefix(w, "=?") {
				checkWord(t, w)
			}
		}
	}
	unfolded := strings.TrimPrefix(strings.ReplaceAll(body, "\r\n", ""), name+": ")
	got, err := (&mime.WordDecoder{}).DecodeHeader(unfolded)
	if err != nil {
		t.Fatalf("decode %q: %v", unfolded, err)
	}
	if got != value {
		t.Fatalf("encoded %q as %q, which decodes to %q", value, out, got)
	}
}

func checkWord(t *testing.T, w string) {
	t.Helper()
	if len(w) > maxWordLen {
		t.Fatalf("encoded word of %d characters: %q", len(w), w)
	}
	s, err := (&mime.WordDecoder{}).Decode(w)
	if err != nil {
		t.Fatalf("word %q: %v", w, err)
	}
	if !utf8.ValidString(s) {
		t.Fatalf("word %q splits a UTF-8 sequence: %q", w, s)
	}
}

func TestEncodeHeader(t *testing.T) {
	tests := []string{
		"", "Hello world", "Hello  world", " leading", "trailing ", "tab\there",
		"你好，世界！这是一个很长的主题行，用来测试折叠和编码是否正确处理多字节字符",
		"こんにちは世界", "🎉🎊🥳" + strings.Repeat("🍰", 40), "مرحبا بالعالم", "שלום עולם",
		"looks =?utf-8?q?encoded?= but is not",
		strings.Repeat("word ", 40),
		strings.Repeat("x", 200),
		"Café crème — naïve façade résumé, déjà vu at the coöperative's soirée",
	}
	for _, name := range []string{"Subject", "X-A-Rather-Long-Custom-Header-Name-For-Testing-Folding-Room"} {
		for _, v := range tests {
			out, err := encodeHeader(name, v)
			if err != nil {
				t.Fatalf("encodeHeader(%q): %v", v, err)
			}
			checkEncodedHeader(t, name, v, out)
		}
	}
}

func TestEncodeHeaderRejects(t *testing.T) {
	for _, v := range []string{"a\r\nBcc: x@y.z", "a\nb", "a\rb", "nul\x00", "\xff\xfe"} {
		if out, err := encodeHeader("Subject", v); err == nil {
			t.Errorf("encodeHeader(%q) = %q, want an error", v, out)
		}
	}
}

func TestFilenameParams(t *testing.T) {
	for _, fn := range []string{
		"report.pdf", `quote " and \ backslash.txt`, strings.Repeat("long-name-", 25) + ".pdf",
		"报告 2026年 第一季度.pdf", strings.Repeat("日本語", 50) + ".txt", "🎉.png",
	} {
		var toks []string
		for _, p := range paramTokens("filename", fn) {
			toks = append(toks, strings.Join(p, " "))
		}
		header := "attachment; " + strings.Join(toks, "; ")
		_, params, err := mime.ParseMediaType(header)
		if err != nil {
			t.Fatalf("%q: %v", header, err)
		}
		if params["filename"] != fn {
			t.Errorf("filename %q came back as %q from %q", fn, params["filename"], header)
		}
		for _, tok := range toks {
			if len(tok) > foldWidth-2 {
				t.Errorf("parameter of %d columns: %q", len(tok), tok)
			}
		}
	}
}

func FuzzEncodeHeader(f *testing.F) {
	for _, s := range []string{
		"Hello", "你好世界", "🎉 party", "  spaces  ", "=?utf-8?q?x?=", "a\tb", "مرحبا", strings.Repeat("é", 100),
		strings.Repeat("abc ", 30), "x\x01y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := encodeHeader("Subject", s)
		if err != nil {
			if !strings.ContainsAny(s, "\r\n\x00") && utf8.ValidString(s) {
				t.Fatalf("encodeHeader(%q) refused a valid value: %v", s, err)
			}
			return
		}
		checkEncodedHeader(t, "Subject", s, out)
	})
}

func TestRawHeaderKeepsSpaceRuns(t *testing.T) {
	// Parsers collapse the whitespace around a fold, so a run of spaces is
	// never a fold point; single spaces are, and keep lines within 78.
	for _, v := range []string{strings.Repeat("token  ", 30) + "end", strings.Repeat("token ", 30) + "end", " lead  and  gaps "} {
		out, err := rawHeader("X-Spaces", v)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		for _, l := range lines {
			if len(lines) > 1 && strings.HasSuffix(l, " ") {
				t.Fatalf("line ends in a space that unfolding would drop: %q", l)
			}
			if len(l) > foldWidth && !strings.Contains(v, "  ") {
				t.Fatalf("line of %d columns: %q", len(l), l)
			}
		}
		if got := strings.TrimPrefix(strings.ReplaceAll(strings.TrimSuffix(out, "\r\n"), "\r\n", ""), "X-Spaces: "); got != v {
			t.Errorf("unfolds to %q, want %q", got, v)
		}
	}
}

// TestEncodedWordCuts checks where runs of encoded words are cut: never
// inside a user-perceived character (nor a rune), and only after a space
// unless the word being cut cannot fit one encoded word, or is the first
// of a field whose name leaves too little room beside it.
func TestEncodedWordCuts(t *testing.T) {
	values := []string{
		longDE, longJA, longJA + " " + longJA, strings.Repeat(combine, 20), strings.Repeat(family, 5),
		strings.Repeat("🇯🇵🇫🇷", 10), "Überweisungsbestätigungsformular " + strings.Repeat("ü", 70),
		strings.Repeat("\u1100\u1161\u11a8", 30), "Ｔｏｋｙｏ 東京 " + strings.Repeat("あ", 30) + " おわり",
	}
	fields := map[string]func(string) string{
		"Subject": func(v string) string { s, _ := encodeHeader("Subject", v); return s },
		"X-Rather-Long-Header-Name-Here": func(v string) string {
			s, _ := encodeHeader("X-Rather-Long-Header-Name-Here", v)
			return s
		},
		"From": func(v string) string { return addressHeader("From", []Address{{v, "a@example.com"}}) },
	}
	for name, render := range fields {
		for _, v := range values {
			out := render(v)
			checkHeaderLines(t, out)
			for ri, run := range encodedRuns(out) {
				checkCuts(t, name, v, out, run, ri == 0)
			}
		}
	}
}

// encodedRuns returns the runs of adjacent encoded words in a field (only
// white space between them): each run decodes to one stretch of text.
func encodedRuns(field string) [][]string {
	var runs [][]string
	last := -1
	for _, loc := range encodedWord.FindAllStringIndex(field, -1) {
		w := field[loc[0]:loc[1]]
		if last >= 0 && strings.Trim(field[last:loc[0]], " \r\n") == "" {
			runs[len(runs)-1] = append(runs[len(runs)-1], w)
		} else {
			runs = append(runs, []string{w})
		}
		last = loc[1]
	}
	return runs
}

// checkCuts checks the cuts between the words of one run; first says the
// run starts the field, on the field name's line.
func checkCuts(t *testing.T, name, v, out string, words []string, first bool) {
	t.Helper()
	q := strings.Contains(words[0], "?q?")
	var pos []int // where each word after the first starts in text
	var text string
	for i, w := range words {
		d, err := dec.Decode(w)
		if err != nil {
			t.Fatalf("%q: %v", w, err)
		}
		if i > 0 {
			pos = append(pos, len(text))
		}
		text += d
	}
	// Only the first word of a field, which must share the name's line, may
	// cut a word, or a character, too wide for what the name leaves there.
	room := ewLineWidth - len(name) - 2 - wordOverhead
	for i, p := range pos {
		ws := strings.LastIndexByte(text[:p], ' ') + 1
		we := len(text)
		if j := strings.IndexByte(text[p:], ' '); j >= 0 {
			we = p + j
		}
		cramped := first && i == 0
		if cs := clusterStart(text, p); cs != p && !(cramped && encodedWidth(text[:clusterLen(text)], q) > room) {
			t.Errorf("%s %.20q: cut inside a character at %d:\n%s", name, v, p, out)
		}
		if text[p-1] == ' ' || text[p] == ' ' {
			continue
		}
		if encodedWidth(text[ws:we], q) <= maxWordLen-wordOverhead && !(cramped && encodedWidth(text[:we], q) > room) {
			t.Errorf("%s %.30q: word %q cut at %d though it fits one encoded word:\n%s", name, v, text[ws:we], p-ws, out)
		}
	}
}

// clusterStart returns the start of the user-perceived character of s
// that holds byte p.
func clusterStart(s string, p int) int {
	for i := 0; i < len(s); {
		n := clusterLen(s[i:])
		if i+n > p {
			return i
		}
		i += n
	}
	return len(s)
}
