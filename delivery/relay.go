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
	addr  string
	opts  *smtp.Options
	pool  *smtp.Pool
}

// NewSMTPRelay returns a transport for the relay r (from smtp.ParseRelayURL)
// with connections configured by base (nil for defaults) and limited by
// poolOpts (its Addr and Options are filled in from r).
func NewSMTPRelay(r *smtp.Relay, base *smtp.Options, poolOpts smtp.PoolOptions) *SMTPRelay {
	s := &SMTPRelay{route: "relay:" + r.Addr(), addr: r.Addr(), opts: r.Options(base)}
	poolOpts.Addr = s.addr
	poolOpts.Options = s.opts
	if poolOpts.Dial == nil {
		poolOpts.Dial = s.dial
	}
	s.pool = smtp.NewPool(&poolOpts)
	return s
}

// Route returns "relay:host:port".
func (s *SMTPRelay) Route() string { return s.route }

// Close closes the pooled connections.
func (s *SMTPRelay) Close() error { return s.pool.Close() }

// dial connects to the relay, noting the connection in the transcript.
func (s *SMTPRelay) dial(ctx context.Context, tr smtp.Transcript) (*smtp.Client, error) {
	c, err := smtp.DialTraced(ctx, s.addr, s.opts, tr)
	if err == nil && tr != nil {
		tr(smtp.Sent, connectNote(c.ServerName(), c.RemoteAddr().String()))
	}
	return c, err
}

// Deliver sends one message and reports the reply that decided each
// recipient: the RCPT reply for a refused one, the final data reply for an
// accepted one. Recipients cut off by a connection failure get no reply,
// so they are deferred.
func (s *SMTPRelay) Deliver(ctx context.Context, env Envelope, body io.Reader) Outcome {
	out := sendPooled(ctx, s.pool, env, body)
	if out.Server == "" {
		out.Server = s.addr
	}
	return out
}

// connectNote is the transcript line that records which host and address
// a new connection reached; transcript parses it back for the log line.
func connectNote(host, addr string) string { return "[connected to " + host + " " + addr + "]" }

// sendPooled sends one message over pool and turns the replies into an
// outcome.
func sendPooled(ctx context.Context, pool *smtp.Pool, env Envelope, body io.Reader) Outcome {
	var tr transcript
	res, err := pool.Send(ctx, &smtp.Envelope{
		From: env.From, Recipients: env.Recipients, Size: env.Size,
		UTF8: env.UTF8, EightBit: env.EightBit,
		DSNReturn: smtp.DSNReturn(env.DSNReturn), EnvID: env.EnvID, RcptNotify: env.Notify, ORcpt: env.ORcpt,
	}, body, &smtp.SendOptions{Transcript: tr.add, Downgrade: env.Downgrade})
	out := Outcome{Err: err, Transcript: tr.String()}
	out.Server, out.ServerAddr = tr.server()
	if res == nil {
		return out
	}
	// The connection that carried the message, also when it was reused.
	if res.Server != "" {
		out.Server = res.Server
	}
	if res.RemoteAddr != nil {
		out.ServerAddr = res.RemoteAddr.String()
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
				Soft: sessionStage(se.Command), Refused: !se.Local && strings.HasPrefix(se.Command, "RCPT")}
			if se.Local {
				// Shown with the code it stands for, but never as if the
				// server had said it.
				reply.Text = "decided locally: " + se.Message
			}
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
	mu         sync.Mutex
	b          strings.Builder
	truncated  bool
	host, addr string // from the last connect note
}

func (t *transcript) add(dir smtp.Direction, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rest, ok := strings.CutPrefix(line, "[connected to "); ok && dir == smtp.Sent {
		t.host, t.addr, _ = strings.Cut(strings.TrimSuffix(rest, "]"), " ")
	}
	if t.b.Len()+len(line)+4 > maxTranscript {
		t.truncated = true
		return
	}
	t.b.WriteString(dir.String())
	t.b.WriteString(": ")
	t.b.WriteString(line)
	t.b.WriteByte('\n')
}

// server returns the host and address of the connection made, if any.
func (t *transcript) server() (string, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.host, t.addr
}

func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.truncated {
		return t.b.String() + "[transcript truncated]\n"
	}
	return t.b.String()
}
