package openapitest

import (
	"net/http"
	"strings"
	"testing"
)

const doc = `{"openapi": "3.1.0", "paths": {
  "/x/{id}": {"get": {"operationId": "getX", "parameters": [{"$ref": "#/components/parameters/id"}],
    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}},
      "429": {"description": "slow down", "headers": {"Retry-After": {"required": true, "schema": {"type": "integer"}}}},
      "204": {"description": "none"}}}}},
  "components": {"parameters": {"id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}},
    "schemas": {"X": {"type": "object", "additionalProperties": false, "required": ["n"], "properties": {
      "n": {"type": "integer", "minimum": 0}, "s": {"type": ["string", "null"], "enum": ["a", "b", null]},
      "t": {"type": "string", "format": "date-time"}, "o": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}}}}`

func TestParseChecksTheDocument(t *testing.T) {
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	op := s.Find("GET", "/x/{id}")
	if op == nil || op.ID != "getX" || len(op.Statuses) != 3 || op.Secured {
		t.Fatalf("operation %+v", op)
	}
	for name, bad := range map[string]string{
		"version":     strings.Replace(doc, "3.1.0", "3.0.3", 1),
		"ref":         strings.Replace(doc, "#/components/schemas/X", "#/components/schemas/Y", 1),
		"path param":  strings.Replace(doc, `"in": "path"`, `"in": "query"`, 1),
		"description": strings.Replace(doc, `"description": "none"`, `"summary": "none"`, 1),
		"status":      strings.Replace(doc, `"204"`, `"default"`, 1),
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse accepted a document with a bad %s", name)
		}
	}
}

func TestCheckResponse(t *testing.T) {
	s, _ := Parse([]byte(doc))
	op := s.Find("GET", "/x/{id}")
	js := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	for body, ok := range map[string]bool{
		`{"n": 1}`: true, `{"n": 1, "s": null, "t": "2025-01-02T03:04:05Z", "o": 3}`: true,
		`{"n": -1}`: false, `{"n": 1.5}`: false, `{}`: false, `{"n": 1, "z": 0}`: false,
		`{"n": 1, "s": "c"}`: false, `{"n": 1, "t": "yesterday"}`: false, `{"n": 1, "o": true}`: false, `[1]`: false,
	} {
		if err := s.CheckResponse(op, 200, js, []byte(body)); (err == nil) != ok {
			t.Errorf("body %s: %v, want ok %v", body, err, ok)
		}
	}
	if err := s.CheckResponse(op, 404, js, nil); err == nil {
		t.Error("an undocumented status passed")
	}
	if err := s.CheckResponse(op, 200, http.Header{"Content-Type": {"text/plain"}}, []byte(`{"n":1}`)); err == nil {
		t.Error("an undocumented media type passed")
	}
	if err := s.CheckResponse(op, 429, http.Header{}, nil); err == nil {
		t.Error("a missing required header passed")
	}
	if err := s.CheckResponse(op, 204, http.Header{}, []byte("x")); err == nil {
		t.Error("a body where none is documented passed")
	}
	if err := s.ValidateJSON(map[string]any{"type": "string", "minLength": 1}, []byte(`"x"`), "x"); err == nil {
		t.Error("a keyword the checker does not know was ignored")
	}
}

func TestUndescribedAndCoverage(t *testing.T) {
	s, _ := Parse([]byte(doc))
	got := s.Undescribed([]string{"GET /x/{id}", "/x/{id}", "POST /x/{id}", "GET /y", "/z/", "/"}, "/")
	want := []string{"POST /x/{id}", "GET /y", "/z/ (answers every method)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Undescribed = %q, want %q", got, want)
	}
	c := s.NewCoverage()
	op := s.Find("GET", "/x/{id}")
	c.Record(op, 200, nil)
	c.Record(op, 204, http.ErrBodyNotAllowed)
	if m := c.Missing(func(*Operation) bool { return true }); strings.Join(m, "|") != "GET /x/{id} 204|GET /x/{id} 429" {
		t.Errorf("Missing = %q", m)
	}
	if len(c.Errors()) != 1 {
		t.Errorf("Errors = %q", c.Errors())
	}
	if m, p := PatternOperation("GET example.com/u/{token...}"); m != "GET" || p != "/u/{token}" {
		t.Errorf("PatternOperation = %q %q", m, p)
	}
}
