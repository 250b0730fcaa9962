package templates

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuiltinContactEscapesHTML(t *testing.T) {
	s := Builtin()
	data := map[string]any{
		"sender_name":  "Eve <script>alert(1)</script>",
		"sender_email": "eve@example.com",
		"comment":      "Hello <script>alert('x')</script> & bye",
	}
	subject, text, html, err := s.Render("contact", data)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Contact form: message from Eve <script>alert(1)</script>" {
		t.Errorf("subject = %q", subject)
	}
	if !strings.Contains(text, "Hello <script>alert('x')</script> & bye") {
		t.Errorf("text body should carry the comment verbatim:\n%s", text)
	}
	if strings.Contains(html, "<script>") {
		t.Errorf("html body contains an unescaped script tag:\n%s", html)
	}
	if !strings.Contains(html, "&lt;script&gt;") || !strings.Contains(html, "&amp; bye") {
		t.Errorf("html body lacks the escaped comment:\n%s", html)
	}
}

func TestBuiltinContactOptionalName(t *testing.T) {
	subject, _, _, err := Builtin().Render("contact", map[string]any{
		"sender_email": "a@example.com", "comment": "hi",
	})
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Contact form: message from a@example.com" {
		t.Errorf("subject = %q", subject)
	}
}

func TestBuiltinComment(t *testing.T) {
	subject, text, html, err := Builtin().Render("comment", map[string]any{
		"sender_email": "bob@example.com",
		"comment":      "<b>nice</b>",
		"post_url":     "javascript:alert(1)",
		"post_title":   "My\r\nBcc: victim@example.com post",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(subject, "\r\n") {
		t.Errorf("subject contains a line break: %q", subject)
	}
	if subject != "New comment on My Bcc: victim@example.com post" {
		t.Errorf("subject = %q", subject)
	}
	if !strings.Contains(text, "<b>nice</b>") {
		t.Errorf("text = %q", text)
	}
	if strings.Contains(html, "<b>nice") || strings.Contains(html, `href="javascript:`) {
		t.Errorf("html not escaped or unsafe URL kept:\n%s", html)
	}
}

func TestMissingKey(t *testing.T) {
	_, _, _, err := Builtin().Render("comment", map[string]any{
		"sender_email": "bob@example.com", "post_url": "https://example.com/p",
	})
	var me *MissingDataError
	if !errors.As(err, &me) {
		t.Fatalf("err = %v, want *MissingDataError", err)
	}
	if me.Key != "comment" || me.Template != "comment" {
		t.Errorf("MissingDataError = %+v", me)
	}
}

func TestUnknownName(t *testing.T) {
	_, _, _, err := Builtin().Render("nope", nil)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Name != "nope" {
		t.Fatalf("err = %v, want *NotFoundError for nope", err)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadUserDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"welcome.subject.tmpl": "Welcome, {{.user.name}}!\n",
		"welcome.html.tmpl":    "<p>Hi {{.user.name}}</p>",
		"contact.subject.tmpl": "Overridden {{.x}}",
		"contact.txt.tmpl":     "body {{.x}}",
		"README.md":            "ignored",
	})
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "comment,contact,welcome" {
		t.Errorf("Names = %s", got)
	}
	subject, text, html, err := s.Render("welcome", map[string]any{
		"user": map[string]any{"name": "<Ann>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Welcome, <Ann>!" || text != "" || html != "<p>Hi &lt;Ann&gt;</p>" {
		t.Errorf("got %q %q %q", subject, text, html)
	}
	_, _, _, err = s.Render("welcome", map[string]any{"user": map[string]any{}})
	var me *MissingDataError
	if !errors.As(err, &me) || me.Key != "user.name" {
		t.Errorf("err = %v, want missing user.name", err)
	}
	subject, text, _, err = s.Render("contact", map[string]any{"x": "1"})
	if err != nil || subject != "Overridden 1" || text != "body 1" {
		t.Errorf("override: %q %q %v", subject, text, err)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := map[string]map[string]string{
		"no subject":   {"a.txt.tmpl": "x"},
		"no body":      {"a.subject.tmpl": "x"},
		"bad syntax":   {"a.subject.tmpl": "{{.x", "a.txt.tmpl": "x"},
		"unknown kind": {"a.subject.tmpl": "x", "a.text.tmpl": "x"},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Load(writeFiles(t, files)); err == nil {
				t.Error("Load succeeded, want an error")
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
}

// A template's settings file is read with it; one for no template, or
// with an unknown key, stops the load.
func TestSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("news.subject.tmpl", "News")
	write("news.txt.tmpl", "Hello")
	write("news.settings.json", `{"unsubscribe": true}`)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Settings("news").Unsubscribe || s.Settings("contact").Unsubscribe || s.Settings("none").Unsubscribe {
		t.Errorf("settings: news %+v, contact %+v", s.Settings("news"), s.Settings("contact"))
	}
	write("news.settings.json", `{"unsubscribe": true, "unsubscribed": 1}`)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "unsubscribed") {
		t.Errorf("unknown key: %v", err)
	}
	write("news.settings.json", `{}`)
	write("ghost.settings.json", `{"unsubscribe": true}`)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("settings for no template: %v", err)
	}
}
