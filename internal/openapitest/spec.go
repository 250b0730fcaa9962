// Package openapitest checks outbox's OpenAPI description against the
// handlers that serve it: tests parse the document, map the patterns a
// ServeMux serves to its operations, validate real responses against
// the documented status codes, media types, headers and schemas, and
// report every documented status that no test case produced.
//
// It understands the part of OpenAPI 3.1 and JSON Schema that the
// description uses ($ref, type, enum, const, properties, required,
// additionalProperties, items, oneOf, minimum, maximum, pattern,
// format date-time) and refuses a document that uses more, so that a
// schema it cannot check never passes unchecked.
package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Spec is a parsed description.
type Spec struct {
	doc map[string]any
	ops []*Operation
}

// Operation is one method on one path.
type Operation struct {
	Method, Path string
	ID           string
	// Statuses are the documented response codes, in order.
	Statuses []int
	// Secured: the operation asks for the bearer token.
	Secured bool
	// ServedBy is the x-outbox-served-by extension: "" for the API
	// handler, "daemon" for what cmd/outbox mounts beside it.
	ServedBy string
	raw      map[string]any
}

// Key names the operation: "GET /v1/messages/{id}".
func (o *Operation) Key() string { return o.Method + " " + o.Path }

var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// Parse reads an OpenAPI 3.1 document and checks that it holds
// together: every $ref resolves, operation ids are unique, each path
// parameter is declared, and every response has a description.
func Parse(data []byte) (*Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		return nil, fmt.Errorf("openapi: version %q, want 3.1.x", v)
	}
	s := &Spec{doc: doc}
	if err := s.checkRefs(doc, "#"); err != nil {
		return nil, err
	}
	paths, _ := doc["paths"].(map[string]any)
	seen := map[string]bool{}
	for _, path := range sortedKeys(paths) {
		item, _ := paths[path].(map[string]any)
		for _, m := range methods {
			raw, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			op, err := s.operation(strings.ToUpper(m), path, raw)
			if err != nil {
				return nil, err
			}
			if seen[op.ID] {
				return nil, fmt.Errorf("openapi: %s: operationId %q used twice", op.Key(), op.ID)
			}
			seen[op.ID] = true
			s.ops = append(s.ops, op)
		}
	}
	return s, nil
}

func (s *Spec) operation(method, path string, raw map[string]any) (*Operation, error) {
	op := &Operation{Method: method, Path: path, raw: raw}
	op.ID, _ = raw["operationId"].(string)
	op.ServedBy, _ = raw["x-outbox-served-by"].(string)
	if op.ID == "" {
		return nil, fmt.Errorf("openapi: %s has no operationId", op.Key())
	}
	sec, ok := raw["security"].([]any)
	if !ok {
		sec, _ = s.doc["security"].([]any)
	}
	op.Secured = len(sec) > 0
	resps, _ := raw["responses"].(map[string]any)
	for _, code := range sortedKeys(resps) {
		n, err := strconv.Atoi(code)
		if err != nil {
			return nil, fmt.Errorf("openapi: %s: response %q is not a status code", op.Key(), code)
		}
		if r := s.deref(resps[code]); r["description"] == nil {
			return nil, fmt.Errorf("openapi: %s %d has no description", op.Key(), n)
		}
		op.Statuses = append(op.Statuses, n)
	}
	if len(op.Statuses) == 0 {
		return nil, fmt.Errorf("openapi: %s documents no response", op.Key())
	}
	declared := map[string]bool{}
	for _, name := range s.Params(op, "path") {
		declared[name] = true
	}
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		if !declared[m[1]] {
			return nil, fmt.Errorf("openapi: %s: path parameter {%s} is not declared", op.Key(), m[1])
		}
	}
	return op, nil
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// Params returns the names of the operation's parameters in where
// ("query", "path", "header").
func (s *Spec) Params(o *Operation, where string) []string {
	var out []string
	list, _ := o.raw["parameters"].([]any)
	for _, p := range list {
		m := s.deref(p)
		if name, _ := m["name"].(string); m["in"] == where {
			out = append(out, name)
		}
	}
	return out
}

// checkRefs resolves every $ref under v, at JSON pointer at.
func (s *Spec) checkRefs(v any, at string) error {
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["$ref"].(string); ok {
			if s.resolve(r) == nil {
				return fmt.Errorf("openapi: %s: $ref %q does not resolve", at, r)
			}
		}
		for _, k := range sortedKeys(v) {
			if err := s.checkRefs(v[k], at+"/"+k); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := s.checkRefs(e, at+"/"+strconv.Itoa(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve follows a local reference ("#/components/schemas/Error").
func (s *Spec) resolve(ref string) map[string]any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = s.doc
	for _, part := range strings.Split(rest, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
	}
	m, _ := cur.(map[string]any)
	return m
}

// deref returns v, or what its $ref names.
func (s *Spec) deref(v any) map[string]any {
	m, _ := v.(map[string]any)
	for i := 0; m != nil && i < 10; i++ {
		r, ok := m["$ref"].(string)
		if !ok {
			break
		}
		m = s.resolve(r)
	}
	return m
}

// Operations returns every operation, by path then method.
func (s *Spec) Operations() []*Operation { return slices.Clone(s.ops) }

// Find returns the operation for method on path (a template), or nil.
func (s *Spec) Find(method, path string) *Operation {
	for _, o := range s.ops {
		if o.Method == method && o.Path == path {
			return o
		}
	}
	return nil
}

// HasPath reports whether path (a template) is described.
func (s *Spec) HasPath(path string) bool {
	for _, o := range s.ops {
		if o.Path == path {
			return true
		}
	}
	return false
}

// PatternOperation splits a net/http.ServeMux pattern into its method
// and its path as an OpenAPI template ("{rest...}" becomes "{rest}");
// method is "" for a pattern without one. A host in the pattern is
// dropped.
func PatternOperation(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	if i := strings.IndexByte(path, '/'); i > 0 {
		path = path[i:]
	}
	path = strings.ReplaceAll(path, "...}", "}")
	path = strings.TrimSuffix(path, "{$}")
	return method, path
}

// CheckResponse checks an answer of op: its status is documented, and
// its media type, required headers and (JSON) body are as documented.
func (s *Spec) CheckResponse(op *Operation, status int, header http.Header, body []byte) error {
	if !slices.Contains(op.Statuses, status) {
		return fmt.Errorf("%s answered %d, which the description does not list (it lists %v): %.200s", op.Key(), status, op.Statuses, body)
	}
	resps, _ := op.raw["responses"].(map[string]any)
	r := s.deref(resps[strconv.Itoa(status)])
	hdrs, _ := r["headers"].(map[string]any)
	for _, name := range sortedKeys(hdrs) {
		if h := s.deref(hdrs[name]); h["required"] == true && header.Get(name) == "" {
			return fmt.Errorf("%s %d: the required header %s is missing", op.Key(), status, name)
		}
	}
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("%s %d: documented without a body, answered %d bytes", op.Key(), status, len(body))
		}
		return nil
	}
	ct := header.Get("Content-Type")
	media, _, _ := strings.Cut(ct, ";")
	media = strings.TrimSpace(strings.ToLower(media))
	mt, ok := content[media].(map[string]any)
	if !ok {
		mt, ok = content["*/*"].(map[string]any)
	}
	if !ok {
		return fmt.Errorf("%s %d: Content-Type %q is not one documented (%v)", op.Key(), status, ct, sortedKeys(content))
	}
	if media != "application/json" {
		return nil
	}
	return s.ValidateJSON(mt["schema"], body, fmt.Sprintf("%s %d", op.Key(), status))
}

// CheckRequest validates a JSON request body sent to op.
func (s *Spec) CheckRequest(op *Operation, body []byte) error {
	rb := s.deref(op.raw["requestBody"])
	content, _ := rb["content"].(map[string]any)
	mt, ok := content["application/json"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s documents no JSON request body", op.Key())
	}
	return s.ValidateJSON(mt["schema"], body, op.Key()+" request")
}

// ValidateJSON validates a JSON document against schema.
func (s *Spec) ValidateJSON(schema any, body []byte, what string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%s: the body is not JSON: %v: %.200s", what, err, body)
	}
	if err := s.validate(schema, v, "$"); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
