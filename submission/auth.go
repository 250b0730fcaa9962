package submission

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"

	"github.com/emersion/go-sasl"
)

// checkPassword reports whether pass is user's password, and returns its
// digest. Both sides are hashed so the comparison takes the same time
// whatever their lengths, and an unknown user costs the same as a wrong
// password.
func (s *Server) checkPassword(user, pass string) ([sha256.Size]byte, bool) {
	want, known := s.access().users[user]
	if !known {
		want = unknownUser // compared anyway, to take the same time
	}
	a := sha256.Sum256([]byte(pass))
	return a, subtle.ConstantTimeCompare(a[:], want[:]) == 1 && known
}

var unknownUser = sha256.Sum256([]byte("\x00unknown user"))

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl provides only as a client:
// the server asks "Username:" then "Password:".
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

var errLoginSequence = errors.New("sasl: unexpected LOGIN response")

// Next implements sasl.Server.
func (a *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch a.step {
	case 0:
		a.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		// Initial response (AUTH LOGIN <user>) carries the user name.
		a.user = string(response)
		a.step = 2
		return []byte("Password:"), false, nil
	case 1:
		a.user = string(response)
		a.step = 2
		return []byte("Password:"), false, nil
	case 2:
		a.step = 3
		return nil, true, a.check(a.user, string(response))
	}
	return nil, false, errLoginSequence
}

var _ sasl.Server = (*loginServer)(nil)
