package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a webhook POST.
const (
	HeaderEventID   = "Outbox-Event-Id"
	HeaderTimestamp = "Outbox-Timestamp"
	HeaderSignature = "Outbox-Signature"
)

// DefaultTolerance is the clock skew Verify allows when given none.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify.
var (
	// ErrNoSignature: the timestamp or signature header is missing or
	// malformed.
	ErrNoSignature = errors.New("webhook: missing or malformed signature headers")
	// ErrBadSignature: no v1 signature matches the body and timestamp under
	// this secret.
	ErrBadSignature = errors.New("webhook: signature does not match")
	// ErrStaleTimestamp: the signed timestamp is further from now than the
	// tolerance allows, as a replayed request's would be.
	ErrStaleTimestamp = errors.New("webhook: timestamp outside tolerance")
)

// Sign returns the Outbox-Signature value for body sent at timestamp (unix
// seconds): "v1=" and the hex HMAC-SHA256 of "<timestamp>.<body>".
func Sign(secret string, timestamp int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret string, timestamp int64, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(strconv.AppendInt(nil, timestamp, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks that body, with the headers it came with, was signed with
// secret no more than tolerance from now (DefaultTolerance if tolerance is
// not positive). Pass the raw body as received, before decoding it. The
// signature header may list several comma-separated "v1=" values; one
// match suffices, so a sender can sign with an old and a new secret while
// a receiver rotates.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(header.Get(HeaderTimestamp)), 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	var sigs [][]byte
	for _, part := range strings.Split(header.Get(HeaderSignature), ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		if sig, err := hex.DecodeString(v); err == nil {
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) == 0 {
		return ErrNoSignature
	}
	// The signature is checked before the clock, so an attacker learns
	// nothing about tolerance from unsigned requests.
	want := mac(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return ErrBadSignature
	}
	skew := time.Since(time.Unix(ts, 0))
	if skew < 0 {
		skew = -skew
	}
	if skew > tolerance {
		return ErrStaleTimestamp
	}
	return nil
}
