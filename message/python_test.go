package message

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/internal/testenv"
)

// pyParse is the third, independent parser of the round trip: Python's
// email package with policy.default, which reads display names, subjects
// and RFC 2231 filenames its own way. It prints, for each file given, what
// it decoded, bodies in base64 so that every byte is compared.
const pyParse = `
import base64, email, json, sys
from email import policy

def addrs(m, name):
    h = m[name]
    if h is None:
        return []
    return [[a.display_name, a.addr_spec] for a in h.addresses]

out = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        raw = f.read()
    m = email.message_from_bytes(raw, policy=policy.default)
    # Header fields in UTF-8 (RFC 6532) are read from the text, as Python
    # reads them only from a str; bodies always from the bytes.
    hm = m
    if any(b >= 0x80 for b in raw.split(b'\r\n\r\n', 1)[0]):
        hm = email.message_from_string(raw.decode('utf-8'), policy=policy.default)
    parts = []
    for p in m.walk():
        if p.is_multipart():
            continue
        parts.append({'ctype': p.get_content_type(), 'filename': p.get_filename() or '',
                      'disp': p.get_content_disposition() or '',
                      'data': base64.b64encode(p.get_payload(decode=True) or b'').decode()})
    custom = {}
    for k in sys.stdin.readline().split():
        custom[k] = str(hm[k])
    out.append({'subject': str(hm['Subject'] or ''), 'from': addrs(hm, 'From'), 'to': addrs(hm, 'To'),
                'cc': addrs(hm, 'Cc'), 'headers': custom, 'defects': [repr(d) for d in m.defects],
                'parts': parts})
json.dump(out, sys.stdout)
`

type pyMessage struct {
	Subject  string            `json:"subject"`
	From     [][2]string       `json:"from"`
	To       [][2]string       `json:"to"`
	Cc       [][2]string       `json:"cc"`
	Headers  map[string]string `json:"headers"`
	Defects  []string          `json:"defects"`
	Parts    []pyPart          `json:"parts"`
	fileName string
}

type pyPart struct {
	Ctype    string `json:"ctype"`
	Filename string `json:"filename"`
	Disp     string `json:"disp"`
	Data     []byte `json:"data"`
}

// python3 returns the interpreter, or skips the test with the line that
// installs it; in CI (CI set) a missing interpreter fails the test.
func python3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		testenv.Missing(t, "python3 not found: the Python email round trip needs it (apt-get install python3)")
	}
	return py
}

// runPython parses each raw message with pyParse; headers[i] lists the
// custom header fields to report for message i.
func runPython(t *testing.T, raws [][]byte, headers [][]string) []pyMessage {
	t.Helper()
	py := python3(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "parse.py")
	if err := os.WriteFile(script, []byte(pyParse), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{script}
	var stdin strings.Builder
	for i, raw := range raws {
		p := filepath.Join(dir, "m"+strings.Repeat("0", 3-len(itoa(i)))+itoa(i)+".eml")
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
		stdin.WriteString(strings.Join(headers[i], " ") + "\n")
	}
	cmd := exec.Command(py, args...)
	cmd.Stdin = strings.NewReader(stdin.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var msgs []pyMessage
	if err := json.Unmarshal(out, &msgs); err != nil {
		t.Fatalf("python3 output: %v\n%s", err, out)
	}
	if len(msgs) != len(raws) {
		t.Fatalf("python3 parsed %d messages, want %d", len(msgs), len(raws))
	}
	return msgs
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestRoundTripPython decodes every round-trip case with Python's email
// package and compares names, addresses, subject, custom headers,
// filenames and bodies exactly.
func TestRoundTripPython(t *testing.T) {
	cases := append(rtCases(), encoderCases()...)
	var raws [][]byte
	var headers [][]string
	for _, c := range cases {
		raws = append(raws, compose(t, c.message()))
		var hs []string
		for _, h := range c.headers {
			hs = append(hs, h[0])
		}
		headers = append(headers, hs)
	}
	msgs := runPython(t, raws, headers)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkPython(t, c, raws[i], msgs[i])
		})
	}
}

func checkPython(t *testing.T, c rtCase, raw []byte, got pyMessage) {
	t.Helper()
	m := c.message()
	fields := unfoldedHeaders(raw)
	if got.Subject != m.Subject {
		t.Errorf("python Subject %q, want %q", got.Subject, m.Subject)
	}
	for _, l := range []struct {
		name string
		got  [][2]string
		want []Address
	}{{"From", got.From, []Address{m.From}}, {"To", got.To, m.To}, {"Cc", got.Cc, m.Cc}} {
		if len(l.got) != len(l.want) {
			t.Errorf("python %s: %d addresses %q, want %d", l.name, len(l.got), l.got, len(l.want))
			continue
		}
		names := pyPhrases(t, fieldValue(fields, l.name))
		for j, w := range l.want {
			if g := l.got[j]; g[0] != names[j] || g[1] != wantEmail(t, w.Email) {
				t.Errorf("python %s[%d] = %q <%s>, want %q <%s>", l.name, j, g[0], g[1], names[j], wantEmail(t, w.Email))
			}
			if strings.Join(strings.Fields(names[j]), "") != strings.Join(strings.Fields(w.Name), "") {
				t.Errorf("%s[%d]: python reads %q for %q: more than white space differs", l.name, j, names[j], w.Name)
			}
		}
	}
	for _, h := range m.Headers {
		if g := got.Headers[h[0]]; g != h[1] {
			t.Errorf("python %s = %q, want %q", h[0], g, h[1])
		}
	}
	if len(got.Defects) > 0 {
		t.Errorf("python reports defects: %q", got.Defects)
	}
	want := c.wantLeaves()
	if len(got.Parts) != len(want) {
		t.Fatalf("python: %d parts, want %d %s", len(got.Parts), len(want), describe(want))
	}
	for j, w := range want {
		g := got.Parts[j]
		if string(g.Data) != w.data {
			t.Errorf("python part %d (%s) body differs: %d bytes %.60q, want %d bytes %.60q", j, w.ctype, len(g.Data), g.Data, len(w.data), w.data)
		}
		if w.ctype != "" && g.Ctype != w.ctype {
			t.Errorf("python part %d type %q, want %q", j, g.Ctype, w.ctype)
		}
		if g.Filename != w.filename {
			t.Errorf("python part %d filename %q, want %q", j, g.Filename, w.filename)
		}
		if w.disp != "" && g.Disp != w.disp {
			t.Errorf("python part %d disposition %q, want %q", j, g.Disp, w.disp)
		}
	}
}

// fieldValue returns the value of the first field called name among
// unfolded header lines.
func fieldValue(fields []string, name string) string {
	for _, f := range fields {
		if v, ok := strings.CutPrefix(f, name+": "); ok {
			return v
		}
	}
	return ""
}

// pyPhrases returns the display names of an address list field as
// Python's email decodes them. It keeps the folding white space between
// two encoded words of a phrase (RFC 2047 §6.2 says to drop it, and
// net/mail and go-message do), so where a name needs two adjacent encoded
// words it reads one space wider at the cut: the test asserts exactly that
// reading, and that only white space differs from the name. Where the
// cuts fall is the encoder's business, checked by TestEncodedWordCuts:
// after a space, unless a single word is longer than an encoded word.
func pyPhrases(t *testing.T, value string) []string {
	t.Helper()
	var names, words []string
	addr := false // the current address has had its <addr-spec>
	end := func() {
		if !addr {
			names = append(names, "") // a bare addr-spec
		}
		words, addr = nil, false
	}
	for s := value; s != ""; {
		s = strings.TrimLeft(s, " ")
		switch {
		case s == "":
		case s[0] == ',':
			end()
			s = s[1:]
		case s[0] == '<':
			names, addr = append(names, strings.Join(words, " ")), true
			s = s[strings.IndexByte(s, '>')+1:]
		case s[0] == '"':
			q, rest := unquote(s)
			words, s = append(words, q), rest
		default:
			n := strings.IndexAny(s, " <,\"")
			if n < 0 {
				n = len(s)
			}
			w := s[:n]
			if encodedWord.FindString(w) == w {
				d, err := dec.Decode(w)
				if err != nil {
					t.Fatalf("encoded word %q: %v", w, err)
				}
				w = d
			}
			words, s = append(words, w), s[n:]
		}
	}
	if len(words) > 0 || !addr {
		end()
	}
	return names
}

// unquote reads the quoted string at the start of s.
func unquote(s string) (string, string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}
