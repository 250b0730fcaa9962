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
