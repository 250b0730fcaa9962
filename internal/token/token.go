// Package token authenticates the small tokens outbox hands out (VERP
// return paths, unsubscribe links) with truncated HMAC-SHA256 tags.
//
// Each use derives its own key from the operator's secret (HKDF-SHA256
// with the use as its info), so one secret can serve them all and a token
// made for one use never verifies as another. A Keys holds the current
// secret, which signs, and older ones that still verify, so a secret can
// be rotated without breaking tokens already out in the world.
package token

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// MinSecret is the shortest secret accepted, in bytes.
const MinSecret = 16

// Keys signs with the first secret it was given and verifies with all.
type Keys struct {
	keys [][]byte
	size int
}

// New derives the keys of one purpose (a fixed string such as
// "outbox verp v1") from secrets, the current one first. Tags are size
// bytes long (8 to 32).
func New(purpose string, size int, secrets ...[]byte) (*Keys, error) {
	if size < 8 || size > sha256.Size {
		return nil, fmt.Errorf("tag size %d: 8 to %d bytes", size, sha256.Size)
	}
	if len(secrets) == 0 {
		return nil, errors.New("no secret given")
	}
	k := &Keys{size: size}
	for i, s := range secrets {
		if len(s) < MinSecret {
			return nil, fmt.Errorf("secret %d is %d bytes; at least %d are needed", i+1, len(s), MinSecret)
		}
		key, err := hkdf.Key(sha256.New, s, nil, purpose, sha256.Size)
		if err != nil {
			return nil, err
		}
		k.keys = append(k.keys, key)
	}
	return k, nil
}

// Size is the length of a tag in bytes.
func (k *Keys) Size() int { return k.size }

// Tag returns the HMAC of payload under the current key, truncated to
// Size bytes.
func (k *Keys) Tag(payload []byte) []byte {
	return tag(k.keys[0], payload)[:k.size]
}

// Verify reports whether tagged is the tag of payload under any of the
// keys, comparing in constant time.
func (k *Keys) Verify(payload, tagged []byte) bool {
	if len(tagged) != k.size {
		return false
	}
	ok := false
	for _, key := range k.keys {
		// Every key is tried, so the time taken does not say which matched.
		if hmac.Equal(tag(key, payload)[:len(tagged)], tagged) {
			ok = true
		}
	}
	return ok
}

func tag(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return m.Sum(nil)
}
