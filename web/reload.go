package web

import (
	"crypto/sha256"
	"errors"
	"net/http"
)

// SetTokens replaces the API tokens that log in to dashboard, a handler
// New returned, while it serves (a daemon's configuration reload). A
// session is bound to the token that opened it, so the sessions of a
// token no longer listed end at once; an empty set means no login, as an
// empty Config.Tokens does. On an error nothing changes.
func SetTokens(dashboard http.Handler, tokens []string) error {
	h, ok := dashboard.(*handler)
	if !ok {
		return errors.New("web: SetTokens needs a handler made by New")
	}
	return h.auth.setTokens(tokens)
}

func (a *authenticator) setTokens(tokens []string) error {
	digests := make([][sha256.Size]byte, 0, len(tokens))
	for _, t := range tokens {
		if t == "" {
			return errors.New("web: empty API token")
		}
		digests = append(digests, sha256.Sum256([]byte(t)))
	}
	a.tokens.Store(&digests)
	return nil
}
