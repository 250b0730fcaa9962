package templates

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// settingsSuffix ends the name of a template's settings file.
const settingsSuffix = ".settings.json"

// Settings say how mail made from a template is sent. They are read from
// NAME.settings.json, a JSON object with these keys (an unknown key is an
// error, so that a misspelt one is noticed at start-up).
type Settings struct {
	// Unsubscribe adds one-click unsubscribe fields (RFC 2369
	// List-Unsubscribe, RFC 8058 List-Unsubscribe-Post) naming each
	// recipient, as a request's "unsubscribe": true does.
	Unsubscribe bool `json:"unsubscribe"`
}

// Settings returns the settings of template name; the zero Settings when
// it has none or there is no such template.
func (s *Set) Settings(name string) Settings {
	if t, ok := s.byName[name]; ok {
		return t.settings
	}
	return Settings{}
}

// addSettings reads the settings files among entries of dir, each for a
// template of the set.
func (s *Set) addSettings(fsys fs.FS, dir string, entries []fs.DirEntry) error {
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), settingsSuffix)
		if e.IsDir() || !ok {
			continue
		}
		t := s.byName[name]
		if t == nil {
			return fmt.Errorf("templates: %s: no template %q to apply it to", e.Name(), name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var st Settings
		if err := dec.Decode(&st); err != nil {
			return fmt.Errorf("templates: %s: %v (want {\"unsubscribe\": true|false})", e.Name(), err)
		}
		t.settings = st
	}
	return nil
}
