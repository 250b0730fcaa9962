// Package templates renders named email templates: a subject and a plain
// text body with text/template, and an HTML body with html/template, whose
// contextual auto-escaping keeps data such as a visitor's comment from
// injecting markup into the mail.
//
// A template NAME is made of up to three files: NAME.subject.tmpl (required),
// NAME.txt.tmpl and NAME.html.tmpl (at least one of the two), and optionally
// NAME.settings.json for how its mail is sent (see Settings). Two templates
// are built in, after the background sender's models in the project's seed:
// "contact" (a contact form: sender_name, sender_email, comment) and
// "comment" (a blog comment: sender_email, comment, post_url, post_title).
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	texttemplate "text/template"
)

//go:embed builtin/*.tmpl
var builtinFS embed.FS

// File name suffixes of the three parts of a template.
const (
	subjectSuffix = ".subject.tmpl"
	textSuffix    = ".txt.tmpl"
	htmlSuffix    = ".html.tmpl"
)

// NotFoundError reports a template name the Set does not hold.
type NotFoundError struct {
	Name string
}

// Error names the missing template.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("templates: no template named %q", e.Name)
}

// MissingDataError reports a data field a template uses but the data lacks.
// Key is the path of the field within the data, e.g. "sender_email" or
// "user.name".
type MissingDataError struct {
	Template string
	Key      string
}

// Error names the template and the missing field.
func (e *MissingDataError) Error() string {
	return fmt.Sprintf("templates: template %q needs data field %q", e.Template, e.Key)
}

// ExecError reports any other failure to render a template with the data
// given, such as indexing a value that is not a map.
type ExecError struct {
	Template string
	Err      error
}

// Error names the template and the underlying failure.
func (e *ExecError) Error() string {
	return fmt.Sprintf("templates: template %q cannot render this data: %v", e.Template, e.Err)
}

// Unwrap returns the underlying template error.
func (e *ExecError) Unwrap() error { return e.Err }

// template is one named template's parts; text or html may be nil.
type template struct {
	subject  *texttemplate.Template
	text     *texttemplate.Template
	html     *htmltemplate.Template
	settings Settings
}

// Set is a collection of named templates. It is safe for concurrent use.
type Set struct {
	byName map[string]*template
}

// Builtin returns a Set holding only the built-in templates.
func Builtin() *Set {
	s := &Set{byName: map[string]*template{}}
	if err := s.addFS(builtinFS, "builtin"); err != nil {
		// The built-in files are compiled into the binary and covered by
		// tests; failing here means the build itself is broken.
		panic(err)
	}
	return s
}

// Load returns a Set holding the built-in templates and those in directory
// dir, which replace built-in ones of the same name. Files not ending in
// .tmpl are ignored; a template that fails to parse is an error, so that a
// broken template stops start-up rather than a delivery.
func Load(dir string) (*Set, error) {
	s := Builtin()
	if err := s.addFS(os.DirFS(dir), "."); err != nil {
		return nil, err
	}
	return s, nil
}

// Names returns the names of the templates in s, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether s holds a template named name.
func (s *Set) Has(name string) bool {
	_, ok := s.byName[name]
	return ok
}

// Render executes template name with data. It returns a *NotFoundError for
// an unknown name and a *MissingDataError when the data lacks a field the
// template uses. The subject is returned on one line: runs of white space,
// line breaks included, become a single space, so that data can never add
// header lines. text or html is empty when the template has no such part.
func (s *Set) Render(name string, data map[string]any) (subject, text, html string, err error) {
	t, ok := s.byName[name]
	if !ok {
		return "", "", "", &NotFoundError{Name: name}
	}
	if data == nil {
		data = map[string]any{}
	}
	var buf bytes.Buffer
	if err := t.subject.Execute(&buf, data); err != nil {
		return "", "", "", execErr(name, err)
	}
	subject = strings.Join(strings.Fields(buf.String()), " ")
	if t.text != nil {
		buf.Reset()
		if err := t.text.Execute(&buf, data); err != nil {
			return "", "", "", execErr(name, err)
		}
		text = buf.String()
	}
	if t.html != nil {
		buf.Reset()
		if err := t.html.Execute(&buf, data); err != nil {
			return "", "", "", execErr(name, err)
		}
		html = buf.String()
	}
	return subject, text, html, nil
}

// missingKeyRE picks the field path and key out of text/template's
// missingkey=error failure, e.g. `at <.user.name>: map has no entry for key
// "name"`. The template packages offer no typed error for it.
var missingKeyRE = regexp.MustCompile(`at <\.([^>]*)>: map has no entry for key "([^"]*)"`)

// fieldChainRE matches a plain field chain such as "user.name".
var fieldChainRE = regexp.MustCompile(`^[\w.]+$`)

// execErr turns a template execution error into a typed one.
func execErr(name string, err error) error {
	if m := missingKeyRE.FindStringSubmatch(err.Error()); m != nil {
		key := m[2]
		// A plain field chain names the whole path; anything fancier (a
		// pipeline, a variable) falls back to the key alone.
		if path := m[1]; fieldChainRE.MatchString(path) && strings.HasSuffix(path, key) {
			key = path
		}
		return &MissingDataError{Template: name, Key: key}
	}
	return &ExecError{Template: name, Err: err}
}

// ErrNoBody is returned by Load for a template with a subject but neither
// a text nor an HTML body.
var ErrNoBody = errors.New("templates: template has no .txt.tmpl or .html.tmpl body")

// addFS parses every template found in directory dir of fsys into s,
// replacing templates of the same name.
func (s *Set) addFS(fsys fs.FS, dir string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	parts := map[string]map[string]string{} // name -> suffix -> path
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tmpl") {
			continue
		}
		name, suffix, err := splitName(e.Name())
		if err != nil {
			return err
		}
		if parts[name] == nil {
			parts[name] = map[string]string{}
		}
		parts[name][suffix] = path.Join(dir, e.Name())
	}
	for name, files := range parts {
		t, err := parseTemplate(fsys, name, files)
		if err != nil {
			return err
		}
		s.byName[name] = t
	}
	return s.addSettings(fsys, dir, entries)
}

// splitName splits "NAME.kind.tmpl" into NAME and its suffix. An unknown
// kind is an error rather than ignored, so that a misspelt file is noticed
// at start-up instead of silently missing from the mail.
func splitName(file string) (name, suffix string, err error) {
	for _, suf := range []string{subjectSuffix, textSuffix, htmlSuffix} {
		if n, ok := strings.CutSuffix(file, suf); ok && n != "" {
			return n, suf, nil
		}
	}
	return "", "", fmt.Errorf("templates: %s: name must end in %s, %s or %s",
		file, subjectSuffix, textSuffix, htmlSuffix)
}

// parseTemplate parses the files of one template.
func parseTemplate(fsys fs.FS, name string, files map[string]string) (*template, error) {
	read := func(suffix string) (string, bool, error) {
		p, ok := files[suffix]
		if !ok {
			return "", false, nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return "", false, fmt.Errorf("templates: %w", err)
		}
		return string(b), true, nil
	}
	src, ok, err := read(subjectSuffix)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("templates: %s: missing %s%s", name, name, subjectSuffix)
	}
	t := &template{}
	if t.subject, err = newText(name+".subject", src); err != nil {
		return nil, err
	}
	if src, ok, err = read(textSuffix); err != nil {
		return nil, err
	} else if ok {
		if t.text, err = newText(name+".txt", src); err != nil {
			return nil, err
		}
	}
	if src, ok, err = read(htmlSuffix); err != nil {
		return nil, err
	} else if ok {
		t.html, err = htmltemplate.New(name + ".html").Option("missingkey=error").Parse(src)
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
	}
	if t.text == nil && t.html == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoBody, name)
	}
	return t, nil
}

// newText parses a text/template that fails on missing data fields.
func newText(name, src string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	return t, nil
}
