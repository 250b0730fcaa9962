package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzScanner checks the streaming scanner against encoding/json: what it
// accepts is valid JSON, and valid JSON it refuses only for what it adds
// (invalid UTF-8, unpaired surrogates, repeated keys, depth), never as a
// syntax error.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2.5e-3,-0,true,false,null,"x\u00e9\ud83d\ude00"]}`,
		`{"a":1,"a":2}`, `"\ud800"`, "\"\xff\"", `[{"k":{"k":{}}}]`, `01`, `1.`, `{"a" 1}`, `[1,]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := newScanner(bytes.NewReader(in))
		err := s.value("")
		if err == nil {
			err = s.end()
		}
		valid := json.Valid(in)
		if err == nil && !valid {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		var own *syntaxError
		if valid && errors.As(err, &own) {
			t.Fatalf("valid JSON %q refused as a syntax error: %v", in, err)
		}
		var ae *apiError
		if valid && err != nil && !errors.As(err, &ae) {
			t.Fatalf("valid JSON %q: unexpected error %v", in, err)
		}
		if err == nil && !utf8.Valid(in) {
			t.Fatalf("accepted invalid UTF-8 %q", in)
		}
	})
}
