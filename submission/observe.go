package submission

// Reasons Config.OnReject reports: a closed set, fit for a metric label.
const (
	RejectBusy             = "busy"               // the server was full: 421 at connect
	RejectPerIP            = "per_ip_limit"       // too many connections from the address
	RejectEvicted          = "evicted"            // closed to make room for another
	RejectSessionTimeout   = "session_timeout"    // the session ran past SessionTimeout
	RejectMailTimeout      = "mail_timeout"       // no MAIL within MailTimeout
	RejectSlowData         = "slow_data"          // data below MinDataRate
	RejectProxyHeader      = "proxy_header"       // a missing or bad PROXY header
	RejectAuthRequired     = "auth_required"      // MAIL or RCPT without authentication
	RejectBadSender        = "bad_sender"         // MAIL FROM not an address we take
	RejectSenderNotAllowed = "sender_not_allowed" // the user may not use that sender
	RejectBadRecipient     = "bad_recipient"      // RCPT TO not an address we take
	RejectTooLarge         = "too_large"          // over MaxMessageSize
	RejectLineTooLong      = "line_too_long"      // a line past the limit
	RejectBadMessage       = "bad_message"        // a message no repair can make sendable
	RejectInterrupted      = "interrupted"        // the transfer broke off
	RejectStore            = "store_unavailable"  // the store did not commit: 451
)

// RejectReasons lists every reason OnReject may report.
var RejectReasons = []string{RejectBusy, RejectPerIP, RejectEvicted, RejectSessionTimeout, RejectMailTimeout,
	RejectSlowData, RejectProxyHeader, RejectAuthRequired, RejectBadSender, RejectSenderNotAllowed,
	RejectBadRecipient, RejectTooLarge, RejectLineTooLong, RejectBadMessage, RejectInterrupted, RejectStore}

// Reasons Config.OnAuthFailure reports.
const (
	AuthBadCredentials  = "bad_credentials"   // wrong user name or password
	AuthThrottled       = "throttled"         // the address is refused for guessing
	AuthTooManyAttempts = "too_many_attempts" // the session used up its attempts
	AuthTLSRequired     = "tls_required"      // AUTH before STARTTLS off loopback
	AuthUnsupported     = "unsupported"       // no users, or an unknown mechanism
)

// AuthFailureReasons lists every reason OnAuthFailure may report.
var AuthFailureReasons = []string{AuthBadCredentials, AuthThrottled, AuthTooManyAttempts, AuthTLSRequired, AuthUnsupported}

// rejected reports a refusal to Config.OnReject.
func (s *Server) rejected(reason string) {
	if f := s.cfg.OnReject; f != nil {
		f(reason)
	}
}

// authFailure reports a failed AUTH to Config.OnAuthFailure.
func (s *Server) authFailure(reason string) {
	if f := s.cfg.OnAuthFailure; f != nil {
		f(reason)
	}
}

// label is the reject reason of a cut.
func (r cutReason) label() string {
	return [...]string{"", RejectSessionTimeout, RejectMailTimeout, RejectSlowData, RejectEvicted, RejectProxyHeader}[r]
}
