package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestSplitArray(t *testing.T) {
	cases := map[string][]string{
		`[]`:    nil,
		` [ ] `: nil,
		`[1]`:   {`1`},
		`[ 1 , "a,]" ,{"k":[1,{"x":"}"}]} , [2,3], null, "q\"]," ]`: {
			`1`, `"a,]"`, `{"k":[1,{"x":"}"}]}`, `[2,3]`, `null`, `"q\"],"`},
	}
	for in, want := range cases {
		if !json.Valid([]byte(in)) {
			t.Fatalf("test input %s is not valid JSON", in)
		}
		got := splitArray([]byte(in))
		if len(got) != len(want) {
			t.Errorf("%s: got %d elements %q, want %q", in, len(got), got, want)
			continue
		}
		for i := range got {
			if string(got[i]) != want[i] {
				t.Errorf("%s: element %d = %s, want %s", in, i, got[i], want[i])
			}
		}
	}
}

// onlyReader hides bytes.Reader's length, so the request is sent chunked,
// without a Content-Length.
type onlyReader struct{ io.Reader }

func TestChunkedBody(t *testing.T) {
	e := setup(t, Config{MaxMessageSize: 4096}, false)
	body := `{"from": "a@example.com", "to": ["b@example.com"], "text": "hi"}`
	r := e.do("POST", "/v1/messages", onlyReader{strings.NewReader(body)})
	if r.Status != http.StatusAccepted {
		t.Fatalf("chunked: %d %s", r.Status, r.Body)
	}
	big := `{"from": "a@example.com", "to": ["b@example.com"], "text": "` + strings.Repeat("x", 5000) + `"}`
	r = e.do("POST", "/v1/messages", onlyReader{strings.NewReader(big)})
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversize: %d %s", r.Status, r.Body)
	}
	if n := e.total(); n != 1 {
		t.Errorf("store holds %d messages, want 1", n)
	}
}
