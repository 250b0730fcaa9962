package submission

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// access is who may submit: the users' password digests, the senders
// they are bound to, and whether loopback needs no authentication. A
// reload swaps it whole, so a session never sees half of one.
type access struct {
	users   map[string][sha256.Size]byte
	senders map[string][]string
	open    bool // Config.AllowNoAuthOnLoopback
}

func newAccess(users map[string]string, senders map[string][]string, open bool) *access {
	a := &access{users: make(map[string][sha256.Size]byte, len(users)), senders: make(map[string][]string, len(senders)), open: open}
	for u, p := range users {
		a.users[u] = sha256.Sum256([]byte(p))
	}
	for u, pats := range senders {
		a.senders[u] = append([]string(nil), pats...)
	}
	return a
}

func (s *Server) access() *access { return s.acc.Load() }

// SetUsers replaces the users, their sender patterns and the loopback rule
// (Config.Users, Senders and AllowNoAuthOnLoopback) while the server runs,
// for a daemon's configuration reload. Connections stay open; a session
// authenticated as a user who is gone, or whose password changed, may no
// longer start a transaction (530), and the transaction under way when it
// happened finishes. On an error nothing changes.
func (s *Server) SetUsers(users map[string]string, senders map[string][]string, allowNoAuthOnLoopback bool) error {
	if err := checkSenders(users, senders); err != nil {
		return err
	}
	s.acc.Store(newAccess(users, senders, allowNoAuthOnLoopback))
	return nil
}

// checkSenders checks that sender patterns name users and look like
// addresses.
func checkSenders(users map[string]string, senders map[string][]string) error {
	for user, pats := range senders {
		if _, ok := users[user]; !ok {
			return fmt.Errorf("submission: sender patterns for %q, who is not a user", user)
		}
		for _, p := range pats {
			if !strings.Contains(p, "@") || strings.ContainsAny(p, " \t\r\n<>") {
				return fmt.Errorf("submission: sender pattern %q for %q is not local@domain (with * as a wildcard)", p, user)
			}
		}
	}
	return nil
}
