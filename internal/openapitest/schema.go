package openapitest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// schemaKeys are the keywords validate understands or that only
// annotate; a schema with any other is refused, not half-checked.
var schemaKeys = map[string]bool{
	"$ref": true, "type": true, "enum": true, "const": true, "properties": true, "required": true,
	"additionalProperties": true, "items": true, "oneOf": true, "minimum": true, "maximum": true,
	"pattern": true, "format": true, "description": true, "contentEncoding": true, "maxLength": true,
	"examples": true,
}

// validate checks v against schema at path ("$.recipients[0].status").
func (s *Spec) validate(schema any, v any, path string) error {
	sc, ok := schema.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: the schema is not an object", path)
	}
	for k := range sc {
		if !schemaKeys[k] {
			return fmt.Errorf("%s: schema keyword %q is not supported by the checker", path, k)
		}
	}
	if r, ok := sc["$ref"].(string); ok {
		target := s.resolve(r)
		if target == nil {
			return fmt.Errorf("%s: $ref %q does not resolve", path, r)
		}
		return s.validate(target, v, path)
	}
	if alts, ok := sc["oneOf"].([]any); ok {
		return s.oneOf(alts, v, path)
	}
	if err := checkType(sc["type"], v, path); err != nil {
		return err
	}
	if err := checkValue(sc, v, path); err != nil {
		return err
	}
	switch v := v.(type) {
	case map[string]any:
		return s.object(sc, v, path)
	case []any:
		if items, ok := sc["items"]; ok {
			for i, e := range v {
				if err := s.validate(items, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Spec) oneOf(alts []any, v any, path string) error {
	matched := 0
	var errs []string
	for _, a := range alts {
		if err := s.validate(a, v, path); err != nil {
			errs = append(errs, err.Error())
		} else {
			matched++
		}
	}
	if matched != 1 {
		return fmt.Errorf("%s: matches %d of the oneOf schemas, want 1 (%s)", path, matched, strings.Join(errs, "; "))
	}
	return nil
}

func (s *Spec) object(sc map[string]any, v map[string]any, path string) error {
	props, _ := sc["properties"].(map[string]any)
	req, _ := sc["required"].([]any)
	for _, r := range req {
		if _, ok := v[r.(string)]; !ok {
			return fmt.Errorf("%s: the required property %q is missing", path, r)
		}
	}
	for _, k := range sortedKeys(v) {
		if p, ok := props[k]; ok {
			if err := s.validate(p, v[k], path+"."+k); err != nil {
				return err
			}
			continue
		}
		switch ap := sc["additionalProperties"].(type) {
		case bool:
			if !ap {
				return fmt.Errorf("%s: property %q is not described", path, k)
			}
		case map[string]any:
			if err := s.validate(ap, v[k], path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonType names the JSON type of a value decoded with UseNumber.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func checkType(t any, v any, path string) error {
	var allowed []string
	switch t := t.(type) {
	case nil:
		return nil
	case string:
		allowed = []string{t}
	case []any:
		for _, e := range t {
			allowed = append(allowed, e.(string))
		}
	}
	got := jsonType(v)
	if slices.Contains(allowed, got) || got == "integer" && slices.Contains(allowed, "number") {
		return nil
	}
	return fmt.Errorf("%s: a JSON %s, want %s", path, got, strings.Join(allowed, " or "))
}

func checkValue(sc map[string]any, v any, path string) error {
	if c, ok := sc["const"]; ok && fmt.Sprint(c) != fmt.Sprint(v) {
		return fmt.Errorf("%s: %v, want %v", path, v, c)
	}
	if enum, ok := sc["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s: %v is not one of %v", path, v, enum)
	}
	if n, ok := v.(json.Number); ok {
		f, _ := n.Float64()
		if m, ok := sc["minimum"].(json.Number); ok {
			if min, _ := m.Float64(); f < min {
				return fmt.Errorf("%s: %v is below the minimum %v", path, n, m)
			}
		}
		if m, ok := sc["maximum"].(json.Number); ok {
			if max, _ := m.Float64(); f > max {
				return fmt.Errorf("%s: %v is above the maximum %v", path, n, m)
			}
		}
	}
	str, ok := v.(string)
	if !ok {
		return nil
	}
	if p, ok := sc["pattern"].(string); ok && !compiled(p).MatchString(str) {
		return fmt.Errorf("%s: %q does not match %s", path, str, p)
	}
	if sc["format"] == "date-time" {
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			return fmt.Errorf("%s: %q is not an RFC 3339 date-time", path, str)
		}
	}
	return nil
}

var patterns sync.Map

func compiled(p string) *regexp.Regexp {
	if re, ok := patterns.Load(p); ok {
		return re.(*regexp.Regexp)
	}
	re := regexp.MustCompile(p)
	patterns.Store(p, re)
	return re
}
