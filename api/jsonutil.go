package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
)

// unknownField marks an UnmarshalTypeError that reports an unknown key.
// Reporting it as a type error lets encoding/json prefix its Field with
// the path to the object, which its own unknown-field error does not.
const unknownField = "unknown field"

var objectType = reflect.TypeOf(struct{}{})

// skipValue ignores a JSON value without copying it.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

// checkKeys returns an error naming the first key of JSON object b that
// is not a field of the struct v points to (by its json tags), or a type
// error when b is not an object.
func checkKeys(b []byte, v any) error {
	var keys map[string]skipValue
	if err := json.Unmarshal(b, &keys); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			return &json.UnmarshalTypeError{Value: te.Value, Type: objectType, Offset: te.Offset}
		}
		return err
	}
	known := jsonKeys(reflect.TypeOf(v).Elem())
	for k := range keys {
		if !slices.Contains(known, k) {
			return &json.UnmarshalTypeError{Value: unknownField, Type: objectType, Field: k}
		}
	}
	return nil
}

// jsonKeys lists the JSON names of struct type t's fields.
func jsonKeys(t reflect.Type) []string {
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// splitArray returns the elements of the JSON array b as subslices of b.
// b must be valid JSON, as encoding/json checks before it calls an
// UnmarshalJSON method.
func splitArray(b []byte) [][]byte {
	var out [][]byte
	depth, start := 0, -1
	inString, escaped := false, false
	for i, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth == 1 {
				continue // the array itself
			}
		case ']', '}':
			depth--
			if depth == 0 {
				if start >= 0 {
					out = append(out, trimJSONSpace(b[start:i]))
				}
				return out
			}
		case ',':
			if depth == 1 {
				out = append(out, trimJSONSpace(b[start:i]))
				start = -1
				continue
			}
		}
		if depth >= 1 && start < 0 {
			start = i
		}
	}
	return out
}

func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && strings.IndexByte(" \t\r\n", b[len(b)-1]) >= 0 {
		b = b[:len(b)-1]
	}
	return b
}
