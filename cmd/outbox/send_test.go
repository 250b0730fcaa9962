package main

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runOutbox runs the command line and returns its exit status and output.
func runOutbox(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSendPrint(t *testing.T) {
	logo := writeFile(t, "logo.png", []byte("\x89PNG\r\n\x1a\nnot really a png"))
	report := writeFile(t, "report.pdf", []byte("%PDF-1.4\nhello\n"))
	code, out, errOut := runOutbox(t, "send", "--print",
		"--from", "Sender <sender@example.com>",
		"--to", "Alice <alice@example.com>, bob@example.org", "--to", "张伟 <zhang@example.cn>",
		"--cc", "carol@example.net", "--bcc", "secret@example.com",
		"--subject", "Quarterly report 第一季度",
		"--html", `<p>Hi</p><img src="cid:logo.png">`,
		"--inline", logo, "--attach", report,
		"--header", "X-Campaign: spring")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	msg, err := mail.ReadMessage(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 3 || to[2].Name != "张伟" || to[1].Address != "bob@example.org" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); subj != "Quarterly report 第一季度" {
		t.Errorf("Subject %q", subj)
	}
	if msg.Header.Get("X-Campaign") != "spring" {
		t.Errorf("X-Campaign %q", msg.Header.Get("X-Campaign"))
	}
	if strings.Contains(out, "secret@example.com") {
		t.Error("Bcc recipient appears in the printed message")
	}
	parts := leafParts(t, msg.Header.Get("Content-Type"), msg.Body)
	want := []string{"text/plain", "text/html", "image/png <logo.png>", "application/pdf report.pdf"}
	if strings.Join(parts, "|") != strings.Join(want, "|") {
		t.Errorf("parts %q, want %q", parts, want)
	}
}

// leafParts lists the leaf parts of a MIME body as "type [<cid>] [filename]".
func leafParts(t *testing.T, ctype string, body io.Reader) []string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return []string{mt}
	}
	var out []string
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		sub := leafParts(t, p.Header.Get("Content-Type"), p)
		if len(sub) == 1 {
			if cid := p.Header.Get("Content-ID"); cid != "" {
				sub[0] += " " + cid
			}
			if fn := p.FileName(); fn != "" && p.Header.Get("Content-ID") == "" {
				sub[0] += " " + fn
			}
		}
		out = append(out, sub...)
	}
}

// TestSendBadInput checks that every kind of bad input fails with exactly
// one line on stderr and nothing at all on stdout.
func TestSendBadInput(t *testing.T) {
	base := []string{"send", "--print", "--from", "a@example.com"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad address", []string{"--to", "bob@"}, `--to: "bob@": missing domain`},
		{"bad address in list", []string{"--to", "a@example.com, bob@"}, "missing domain"},
		{"bad from", []string{"--to", "b@example.com", "--from", "nobody"}, `--from: "nobody": missing @`},
		{"header injection", []string{"--to", "b@example.com", "--header", "X-A: b\r\nBcc: evil@example.com"}, "--header[0]: "},
		{"header name injection", []string{"--to", "b@example.com", "--header", "X-A\nBcc: evil@example.com"}, "--header[0]: "},
		{"owned header", []string{"--to", "b@example.com", "--header", "Subject: sneaky"}, "cannot be set as a custom header"},
		{"subject injection", []string{"--to", "b@example.com", "--subject", "hi\nBcc: evil@example.com"}, "--subject: contains CR or LF"},
		{"address injection", []string{"--to", "b@example.com\r\nBcc: evil@example.com"}, "contains CR or LF"},
		{"header without colon", []string{"--to", "b@example.com", "--header", "NoColon"}, "want 'Name: value'"},
		{"missing attachment", []string{"--to", "b@example.com", "--attach", "/nonexistent/file.pdf"}, "no such file"},
		{"directory attachment", []string{"--to", "b@example.com", "--attach", os.TempDir()}, "is a directory"},
		{"no recipient", nil, "--to: no recipients"},
		{"unknown flag", []string{"--to", "b@example.com", "--nope"}, "flag provided but not defined"},
		{"text and text-file", []string{"--to", "b@example.com", "--text", "x", "--text-file", "y"}, "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runOutbox(t, append(append([]string{}, base...), tt.args...)...)
			if code == 0 {
				t.Errorf("exit 0")
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
				t.Errorf("stderr is not one line: %q", errOut)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tt.want)
			}
		})
	}
}

func TestSendModes(t *testing.T) {
	// With neither mode, send submits to the daemon, here not running.
	t.Setenv("OUTBOX_URL", "http://127.0.0.1:1")
	code, out, errOut := runOutbox(t, "send", "--from", "a@example.com", "--to", "b@example.com", "--text", "x")
	if code == 0 || out != "" || !strings.Contains(errOut, "cannot reach the outbox daemon") {
		t.Errorf("no mode: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runOutbox(t, "send", "--print", "--direct", "--from", "a@example.com", "--to", "b@example.com")
	if code == 0 || out != "" || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("--print --direct: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Help goes to stdout, as asked for: 'outbox send -h | less' works.
	code, out, errOut = runOutbox(t, "send", "-h")
	if code != 0 || !strings.Contains(out, "--attach FILE") || errOut != "" {
		t.Errorf("-h: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
