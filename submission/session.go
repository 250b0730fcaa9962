package submission

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/internal/throttle"
	"github.com/outbox-mail/outbox/queue"
)

// Replies the session gives; go-smtp writes an *smtp.SMTPError verbatim.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required"}
	errEncryptionRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11},
		Message: "Encryption required for authentication: use STARTTLS first"}
	errTooManyFailures = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Too many failed authentication attempts"}
	errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message: "Server shutting down, try again later"}
)

// maxAuthFailures is how many failed AUTH attempts a session is allowed.
const maxAuthFailures = 3

// session is one client connection's SMTP state, from EHLO (and again after
// STARTTLS, which starts a new session) to the connection's end.
type session struct {
	srv      *Server
	conn     *smtp.Conn
	tc       *trackedConn
	log      *slog.Logger
	loopback bool
	tls      bool
	helo     string
	peerIP   string
	ip       netip.Addr // the client's address, for the auth throttle
	user     string     // authenticated user name, empty before AUTH
	digest   [32]byte   // of the password user authenticated with
	failures int        // failed AUTH attempts in this session

	tx *transaction // the message under way, nil between messages
}

// transaction is the envelope of one message, from MAIL to its reply.
type transaction struct {
	from     string
	rcpts    []string
	seen     map[string]bool // recipients already given, for deduplication
	body8bit bool
	utf8     bool
	dsn      queue.DSN            // RET and ENVID
	rcptDSN  []queue.RecipientDSN // NOTIFY and ORCPT, by recipient
	// feedback: the recipients are addresses of the bounce domain, and
	// the message goes to Config.Inbound, never to the queue.
	feedback bool
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	if s.draining.Load() {
		return nil, errShuttingDown
	}
	nc := c.Conn()
	_, isTLS := c.TLSConnectionState()
	peerIP := "unknown"
	var ip netip.Addr
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		peerIP = ta.IP.String()
		ip, _ = netip.AddrFromSlice(ta.IP)
	}
	tc := tracked(nc)
	loopback := s.cfg.isLoopback(nc.LocalAddr(), nc.RemoteAddr())
	if tc != nil {
		if t, ok := nc.(*tls.Conn); ok {
			tc.setTop(t)
		}
		// A proxy that does not say who its client is could be relaying
		// anyone: such a connection is never loopback.
		loopback = loopback && !tc.noClientAddr
	}
	return &session{
		srv:      s,
		conn:     c,
		tc:       tc,
		log:      s.log.With("remote", nc.RemoteAddr().String()),
		loopback: loopback,
		tls:      isTLS,
		helo:     sanitizeDomain(c.Hostname()),
		peerIP:   peerIP,
		ip:       ip.Unmap(),
	}, nil
}

// mayAuth reports whether credentials may cross this connection: only
// under TLS, or on loopback where nobody can listen in.
func (s *session) mayAuth() bool { return s.tls || s.loopback }

// AuthMechanisms lists PLAIN and LOGIN where AUTH is allowed and users are
// configured; an empty list keeps go-smtp from advertising AUTH at all.
func (s *session) AuthMechanisms() []string {
	if !s.mayAuth() || len(s.srv.access().users) == 0 {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts a SASL exchange for mech.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.mayAuth() {
		s.log.Debug("submission: AUTH refused before STARTTLS")
		s.srv.authFailure(AuthTLSRequired)
		return nil, errEncryptionRequired
	}
	if len(s.srv.access().users) == 0 {
		s.srv.authFailure(AuthUnsupported)
		return nil, smtp.ErrAuthUnsupported
	}
	// Guessing passwords costs a new connection every few attempts, and
	// the throttle slows and then refuses the address whatever its
	// connections.
	if s.failures >= maxAuthFailures {
		s.srv.authFailure(AuthTooManyAttempts)
		return nil, errTooManyFailures
	}
	if d := s.srv.cfg.Throttle.Blocked(s.ip); d > 0 {
		s.srv.authFailure(AuthThrottled)
		return nil, refusedReply(d)
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return s.authFailed(user, "authorization identity differs from user")
			}
			return s.checkLogin(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: s.checkLogin}, nil
	}
	s.srv.authFailure(AuthUnsupported)
	return nil, smtp.ErrAuthUnknownMechanism
}

// checkLogin verifies a user's password, once the throttle gives this
// address its turn, and records the user on success.
func (s *session) checkLogin(user, pass string) error {
	th := s.srv.cfg.Throttle
	wait, err := th.Admit(s.ip)
	var re *throttle.RefusedError
	if errors.As(err, &re) {
		s.srv.authFailure(AuthThrottled)
		return refusedReply(re.RetryAfter)
	}
	if throttle.Sleep(s.srv.ctx, wait) != nil {
		return errShuttingDown
	}
	digest, ok := s.srv.checkPassword(user, pass)
	if !ok {
		return s.authFailed(user, "wrong user name or password")
	}
	th.Succeeded(s.ip, user)
	s.user, s.digest = user, digest
	if s.tc != nil {
		s.tc.authenticated()
	}
	s.log = s.log.With("user", user)
	s.log.Info("submission: authenticated")
	return nil
}

// authFailed records a failed attempt (the throttle logs a summary per
// address; the details go to the debug log, naming the user but never the
// password), waits as long as the throttle says for this user, and returns
// the 535 reply.
func (s *session) authFailed(user, why string) error {
	s.failures++
	s.srv.authFailure(AuthBadCredentials)
	delay := s.srv.cfg.Throttle.Failed(s.ip, "smtp", user)
	s.log.Debug("submission: authentication failed", "user", logSafe(user, 64), "reason", why)
	if throttle.Sleep(s.srv.ctx, delay) != nil {
		return errShuttingDown
	}
	return smtp.ErrAuthFailed
}

// refusedReply is the 454 for an address refused by the throttle.
func refusedReply(retry time.Duration) error {
	return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: fmt.Sprintf("Too many failed authentication attempts from your address; try again in %s", retry.Round(time.Second))}
}

// authorized reports whether this session may submit mail: its user
// still has the password it authenticated with (a reload that removes the
// user or changes the password ends that right), or the connection is
// loopback and loopback needs no authentication.
func (s *session) authorized() bool {
	acc := s.srv.access()
	if s.user != "" && acc.users[s.user] == s.digest {
		return true
	}
	return acc.open && s.loopback
}

// Mail starts a transaction after checking authentication and the sender.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if !s.authorized() {
		// Without AUTH, only mail for the bounce domain: its recipients
		// are checked at RCPT.
		if err := s.mayReport(opts); err != nil {
			if err == errAuthRequired {
				s.srv.rejected(RejectAuthRequired)
			} else {
				s.srv.rejected(RejectTooLarge)
			}
			return err
		}
	}
	from, err := checkAddress(from, opts.UTF8, true)
	if err != nil {
		s.srv.rejected(RejectBadSender)
		return senderError(err)
	}
	if pats, bound := s.srv.access().senders[s.user]; bound && s.user != "" && !senderAllowed(from, pats) {
		s.log.Warn("submission: sender not allowed for user", "from", logSafe(from, 254))
		s.srv.rejected(RejectSenderNotAllowed)
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: fmt.Sprintf("Sender <%s> is not allowed for user %s", logSafe(from, 254), logSafe(s.user, 64))}
	}
	if s.tc != nil && !s.tc.begin() {
		return errShuttingDown
	}
	s.tx = &transaction{
		from:     from,
		seen:     make(map[string]bool),
		body8bit: opts.Body == smtp.Body8BitMIME,
		utf8:     opts.UTF8,
		dsn:      queue.DSN{Return: queue.DSNReturn(opts.Return), EnvID: opts.EnvelopeID},
	}
	return nil
}

// Rcpt adds a recipient with its DSN parameters; a repeated one is
// accepted and kept once, with the parameters it came with first.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.tx == nil {
		s.srv.rejected(RejectAuthRequired)
		return errAuthRequired
	}
	to, err := checkAddress(to, s.tx.utf8, false)
	if err != nil {
		s.srv.rejected(RejectBadRecipient)
		return recipientError(err)
	}
	if err := s.routeRcpt(to); err != nil {
		return err
	}
	key := dedupKey(to)
	if !s.tx.seen[key] {
		s.tx.seen[key] = true
		s.tx.rcpts = append(s.tx.rcpts, to)
		s.tx.rcptDSN = append(s.tx.rcptDSN, rcptDSN(opts))
	}
	return nil
}

// rcptDSN is a recipient's NOTIFY and ORCPT (RFC 3461), as go-smtp read
// them.
func rcptDSN(opts *smtp.RcptOptions) queue.RecipientDSN {
	var d queue.RecipientDSN
	if opts == nil {
		return d
	}
	for _, n := range opts.Notify {
		d.Notify = append(d.Notify, string(n))
	}
	d.ORcpt = opts.OriginalRecipient
	return d
}

// Reset ends the transaction; go-smtp calls it after the reply to DATA or
// BDAT LAST has been written, on RSET, EHLO and STARTTLS.
func (s *session) Reset() {
	if s.tx != nil {
		s.tx = nil
		if s.tc != nil {
			s.tc.end()
		}
	}
}

// Logout ends the session.
func (s *session) Logout() error {
	s.Reset()
	return nil
}

// dedupKey compares addresses with the domain case-folded; the local part
// is case-sensitive by RFC 5321.
func dedupKey(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr
	}
	return addr[:i] + strings.ToLower(addr[i:])
}

// traceID names one transaction in the Received header and logs, before
// the store has given the message its id.
func traceID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
