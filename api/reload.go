package api

import (
	"crypto/sha256"
	"errors"
)

// SetTokens replaces the accepted bearer tokens while the handler serves
// (a daemon's configuration reload): requests from then on are checked
// against the new set, requests under way finish as they began. An empty
// set means no authentication, as an empty Config.Tokens does. On an
// error nothing changes.
func (h *Handler) SetTokens(tokens []string) error {
	digests := make([][sha256.Size]byte, 0, len(tokens))
	for _, t := range tokens {
		if t == "" {
			return errors.New("api: empty API token")
		}
		// Comparing digests makes the comparison independent of the
		// tokens' lengths as well as their contents.
		digests = append(digests, sha256.Sum256([]byte(t)))
	}
	h.tokens.Store(&digests)
	return nil
}
