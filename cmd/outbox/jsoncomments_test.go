package main

import (
	"bytes"
	"encoding/json"
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
