package delivery

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/outbox-mail/outbox/smtp"
)

// maxTranscript bounds the transcript kept per attempt; a session to many
// recipients is summarised rather than stored without limit.
const maxTranscript = 32 << 10

// SMTPRelay delivers through one SMTP relay over a pool of reused
// connections.
type SMTPRelay struct {
	route string
	pool  *smtp.Pool
}

// NewSMTPRelay returns a transport for the relay r (from smtp.ParseRelayURL)
// with connections configured by base (nil for defaults) and limited by
// poolOpts (its Addr and Options are filled in from r).
func NewSMTPRelay(r *smtp.Relay, base *smtp.Options, poolOpts smtp.PoolOptions) *SMTPRelay {
	poolOpts.Addr = r.Addr()
	poolOpts.Options = r.Options(base)
	return &SMTPRelay{route: "relay:" + r.Addr(), pool: smtp.NewPool(&poolOpts)}
}

// Route returns "relay:host:port".
func (s *SMTPRelay) Route() string { return s.route }

// Close closes the pooled connections.
func (s *SMTPRelay) Close() error { return s.pool.Close() }

// Deliver sends one message and reports the reply that decided each
// recipient: the RCPT reply for a refused one, the final data reply for an
// accepted one. Recipients cut off by a connection failure get no reply,
// so they are deferred.
func (s *SMTPRelay) Deliver(ctx context.Context, env Envelope, body io.Reader) Outcome {
	var tr transcript
	res, err := s.pool.Send(ctx, &smtp.Envelope{
		From: env.From, Recipients: env.Recipients, Size: env.Size,
		UTF8: env.UTF8, EightBit: env.EightBit,
	}, body, &smtp.SendOptions{Transcript: tr.add})
	out := Outcome{Err: err, Transcript: tr.String()}
	if res == nil {
		return out
	}
	for _, rr := range res.Recipients {
		var reply Reply
		var se *smtp.Error
		switch {
		case rr.Err == nil && res.Data != nil:
			reply = Reply{Code: res.Data.Code, EnhancedCode: enhanced(res.Data.EnhancedCode),
				Text: res.Data.Message()}
		case errors.As(rr.Err, &se):
			reply = Reply{Code: se.Code, EnhancedCode: enhanced(se.EnhancedCode), Text: se.Message,
				Soft: sessionStage(se.Command)}
		default:
			if out.Err == nil && rr.Err != nil {
				out.Err = rr.Err
			}
			continue
		}
		out.Recipients = append(out.Recipients, RecipientReply{Address: rr.Address, Reply: reply})
	}
	return out
}

// sessionStage reports whether a rejected command belongs to setting up
// the session with the relay rather than to the message.
func sessionStage(command string) bool {
	for _, p := range []string{"greeting", "EHLO", "HELO", "STARTTLS", "AUTH", "RSET", "NOOP"} {
		if strings.HasPrefix(command, p) {
			return true
		}
	}
	return false
}

func enhanced(e smtp.EnhancedCode) string {
	if e.IsZero() {
		return ""
	}
	return e.String()
}

// transcript collects a session's lines up to maxTranscript bytes.
type transcript struct {
	mu        sync.Mutex
	b         strings.Builder
	truncated bool
}

func (t *transcript) add(dir smtp.Direction, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b.Len()+len(line)+4 > maxTranscript {
		t.truncated = true
		return
	}
	t.b.WriteString(dir.String())
	t.b.WriteString(": ")
	t.b.WriteString(line)
	t.b.WriteByte('\n')
}

func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.truncated {
		return t.b.String() + "[transcript truncated]\n"
	}
	return t.b.String()
}
