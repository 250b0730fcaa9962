package webhook

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// Event types, the values of NewEvent.Type and of the payload's "type".
const (
	TypeDelivered = "delivered"
	TypeDeferred  = "deferred"
	TypeFailed    = "failed"
	TypeCancelled = "cancelled"
	// What is learnt after sending: a bounce report (DSN) said a
	// recipient failed, a recipient complained (ARF), a recipient
	// unsubscribed (RFC 8058 one-click, or mail to the unsubscribe
	// address).
	TypeBounced      = "bounced"
	TypeComplained   = "complained"
	TypeUnsubscribed = "unsubscribed"
)

// allTypes is what an endpoint with no Events subscribes to.
var allTypes = []string{TypeDelivered, TypeDeferred, TypeFailed, TypeCancelled,
	TypeBounced, TypeComplained, TypeUnsubscribed}

// Endpoint is a URL that receives events, with the secret that signs them.
type Endpoint struct {
	// URL is where events are POSTed; http or https, with a host.
	URL string
	// Secret keys the HMAC-SHA256 signature; required, never logged.
	Secret string
	// Events lists the types sent here; empty means all of them.
	Events []string
}

// wants reports whether the endpoint subscribes to events of type typ.
func (e *Endpoint) wants(typ string) bool {
	if len(e.Events) == 0 {
		return true
	}
	for _, t := range e.Events {
		if t == typ {
			return true
		}
	}
	return false
}

// RetryPolicy is the schedule of POSTs after failures. Zero fields take the
// defaults given.
type RetryPolicy struct {
	// Initial is the wait after the first failed POST (default 10s); each
	// further failure doubles it.
	Initial time.Duration
	// Max caps the wait between attempts (default 1h).
	Max time.Duration
	// MaxAge abandons an event whose next attempt would come later than
	// this after it was created (default 24h).
	MaxAge time.Duration
	// MaxAttempts abandons an event after this many POSTs (default 20).
	MaxAttempts int
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Initial <= 0 {
		p.Initial = 10 * time.Second
	}
	if p.Max <= 0 {
		p.Max = time.Hour
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.MaxAge <= 0 {
		p.MaxAge = 24 * time.Hour
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 20
	}
	return p
}

// Backoff returns the wait after the given number of failed attempts
// (1 for the first): Initial doubled attempts-1 times, at most Max.
func (p RetryPolicy) Backoff(attempts int) time.Duration {
	p = p.withDefaults()
	d := p.Initial
	for i := 1; i < attempts && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Config configures a Dispatcher. Store is required; without Endpoints the
// dispatcher records and sends nothing.
type Config struct {
	// Store keeps events durably; the same store as the mail queue.
	Store queue.EventQueue
	// Endpoints receive events. An event stored for a URL no longer listed
	// here is abandoned.
	Endpoints []Endpoint
	// Client makes the POSTs (default: 10s timeout, redirects not
	// followed, so a signed event never lands somewhere unconfigured).
	Client *http.Client
	// Workers is how many POSTs run at once (default 2).
	Workers int
	// Retry is the schedule after failed POSTs.
	Retry RetryPolicy
	// Lease is how long a claimed event is held before another dispatcher
	// may take it (default 1m); keep it above Client's timeout.
	Lease time.Duration
	// PollInterval bounds an idle sleep, for events recorded behind the
	// dispatcher's back without a Notify (default 30s).
	PollInterval time.Duration
	// Logger receives operational logs (default slog.Default()).
	Logger *slog.Logger
	// Owner names this process in leases (default host-pid-time).
	Owner string
	// OnPost, if set, hears of every POST's result: PostDelivered,
	// PostFailed (tried again later), PostAbandoned or PostInterrupted.
	// For metrics: it must not block.
	OnPost func(result string)
}

// validate checks the endpoints and fills in defaults.
func (cfg *Config) validate() error {
	if cfg.Store == nil {
		return errors.New("webhook: Config.Store is required")
	}
	if err := CheckEndpoints(cfg.Endpoints); err != nil {
		return err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s-%d-%d-webhook", host, os.Getpid(), time.Now().UnixNano())
	}
	cfg.Retry = cfg.Retry.withDefaults()
	return nil
}

func checkEndpoint(e *Endpoint) error {
	if e.URL == "" {
		return errors.New("URL is empty")
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return errors.New("URL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL scheme %q is not http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("URL has no host")
	}
	if e.Secret == "" {
		return errors.New("secret is empty")
	}
	for _, t := range e.Events {
		if !validType(t) {
			return fmt.Errorf("unknown event type %q (want delivered, deferred, failed, cancelled, bounced, complained or unsubscribed)", t)
		}
	}
	return nil
}

func validType(t string) bool {
	for _, a := range allTypes {
		if t == a {
			return true
		}
	}
	return false
}

// redact hides a password in a URL's user info and its query (where
// receivers often put a token), so errors and logs never carry one; a URL
// that does not parse is not shown at all.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	return u.Redacted()
}
