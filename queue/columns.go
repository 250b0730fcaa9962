package queue

import (
	"encoding/json"
	"fmt"
	"strings"
)

// How drivers store the fields that are not scalars, in one place so that
// every driver writes and reads the same text: Tags as a JSON object ("{}"
// when there are none), lists of words (Repairs, DSN NOTIFY) joined by
// commas ("" when there are none). None of their values holds a comma:
// repairs and NOTIFY keywords are fixed words.

// TagsText is tags as a driver stores them.
func TagsText(tags map[string]string) (string, error) {
	if len(tags) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(tags)
	return string(b), err
}

// ParseTags reads what TagsText made for message id.
func ParseTags(id, s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var tags map[string]string
	if err := json.Unmarshal([]byte(s), &tags); err != nil {
		return nil, fmt.Errorf("message %s: tags: %w", id, err)
	}
	return tags, nil
}

// ListText is a list of words as a driver stores it.
func ListText(words []string) string { return strings.Join(words, ",") }

// ParseList reads what ListText made.
func ParseList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
