package token

import (
	"bytes"
	"testing"
)

func TestTags(t *testing.T) {
	s1 := bytes.Repeat([]byte{1}, 32)
	s2 := bytes.Repeat([]byte{2}, 32)
	old, err := New("test v1", 12, s1)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := New("test v1", 12, s2, s1)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New("other v1", 12, s1)
	p := []byte("payload")
	tag := old.Tag(p)
	if len(tag) != 12 {
		t.Fatalf("tag of %d bytes", len(tag))
	}
	if !old.Verify(p, tag) || !rotated.Verify(p, tag) {
		t.Error("a tag does not verify under its key, or after a rotation")
	}
	if old.Verify(p, rotated.Tag(p)) {
		t.Error("a tag of the new secret verifies under the old one alone")
	}
	if other.Verify(p, tag) {
		t.Error("a tag made for one purpose verifies for another")
	}
	if old.Verify([]byte("payloaD"), tag) || old.Verify(p, tag[:11]) || old.Verify(p, nil) || old.Verify(p, make([]byte, 40)) {
		t.Error("a wrong payload or tag verifies")
	}
	bad := append([]byte{}, tag...)
	bad[0] ^= 1
	if old.Verify(p, bad) {
		t.Error("a flipped bit verifies")
	}
	if _, err := New("x", 12, []byte("short")); err == nil {
		t.Error("a 5-byte secret accepted")
	}
	if _, err := New("x", 12); err == nil {
		t.Error("no secret accepted")
	}
	if _, err := New("x", 4, s1); err == nil {
		t.Error("a 4-byte tag accepted")
	}
}
