package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStripComments(t *testing.T) {
	for _, tc := range []struct{ in, comment string }{
		{"{\"a\": 1} // one\n", "// one"},
		{"// head\n{\"url\": \"https://x/y\"}", "// head"},
		{`{"s": "a \" // still a string"} // c`, "// c"},
		{`{"s": "back\\"} // after an escaped \`, `// after an escaped \`},
		{"{\n  // \"key\": 2,\n  \"k\": 3\n}", `// "key": 2,`},
		{`"unterminated // string`, ""},
		{"/", ""},
	} {
		want := strings.Replace(tc.in, tc.comment, strings.Repeat(" ", len(tc.comment)), 1)
		if got := string(stripComments([]byte(tc.in))); got != want {
			t.Errorf("stripComments(%q) = %q, want %q", tc.in, got, want)
		}
	}
}

// FuzzStripComments: the length never changes (JSON errors keep their
// offsets), valid JSON is never touched (a // outside a string is not
// JSON), and what is blanked is only ever turned into spaces.
func FuzzStripComments(f *testing.F) {
	for _, s := range []string{`{"a": "b"} // c`, "// x\n{}", `{"u": "http://h/p"}`, `"\\" // q`, `{"a":"\"//"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := stripComments(in)
		if len(out) != len(in) {
			t.Fatalf("length %d → %d", len(in), len(out))
		}
		if json.Valid(in) && !bytes.Equal(in, out) {
			t.Fatalf("valid JSON changed: %q → %q", in, out)
		}
		for i := range in {
			if out[i] != in[i] && (out[i] != ' ' || in[i] == '\n') {
				t.Fatalf("byte %d: %q → %q", i, in[i], out[i])
			}
		}
	})
}

// FuzzConfigFile feeds the daemon's config loader any file: it either
// loads or says what is wrong, never panics, and a file that loads gives
// flags that a second load of the same file gives again.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{`{"http": "127.0.0.1:0", "routes": [{"domain": "a.test", "target": "mx"}]}`,
		"// c\n{\"api_token\": [\"0123456789abcdef\"], \"max_message_size\": \"1MiB\"} // d",
		`{"webhooks": [{"url": "http://h/", "secret": "s"}], "smtp_require_auth": true, "mx_port": 25}`,
		`{"route": "a.test=mx"}`, `[]`, `{"config": "x"}`, `{"retry_initial": 5}`} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "c.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := parseServeConfig([]string{"--config", path})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		again, err := parseServeConfig([]string{"--config", path})
		if err != nil {
			t.Fatalf("loaded once, then: %v", err)
		}
		c.flags.VisitAll(func(fl *flag.Flag) {
			if v := again.flags.Lookup(fl.Name).Value.String(); v != fl.Value.String() {
				t.Fatalf("--%s: %q then %q", fl.Name, fl.Value.String(), v)
			}
		})
	})
}
