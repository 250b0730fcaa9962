// Package api serves outbox's HTTP JSON API: submit messages (composed
// from JSON fields, from a named template, or uploaded ready-made), read
// their delivery status, and steer the queue (retry, cancel).
//
// Every error is answered as JSON, {"error": "one sentence", "field": "to[2]"},
// with a 4xx status for anything the client can fix. Bad input never
// stores anything and never yields a 500.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/internal/throttle"
	"github.com/outbox-mail/outbox/templates"
)

// Defaults for Config.
const (
	DefaultMaxMessageSize = 25 << 20
	DefaultMaxRecipients  = 1000
)

// Config configures the API handler. Client is required.
type Config struct {
	// Client is the outbox the API submits to and reads from.
	Client *outbox.Client
	// Tokens are the accepted bearer tokens. Empty means no authentication;
	// the daemon allows that only on a loopback address.
	Tokens []string
	// MaxMessageSize bounds a request body, JSON or raw, in bytes
	// (default 25 MiB). It is enforced while reading.
	MaxMessageSize int64
	// MaxRecipients bounds to+cc+bcc of one message (default 1000).
	MaxRecipients int
	// Templates are the templates a JSON message may name; nil means none.
	Templates *templates.Set
	// Logger receives server-side failures (default slog.Default()).
	Logger *slog.Logger
	// Hostname is the domain of the Message-ID given to a raw message
	// that has none (default: os.Hostname).
	Hostname string
	// Throttle slows and then refuses token guessing; nil means one with
	// the default settings. Share it with the dashboard and the SMTP
	// listener.
	Throttle *throttle.Throttle
	// Health answers /readyz and hears of failed enqueues; nil means
	// /readyz only checks that the store answers a query.
	Health Health
	// Changes wakes long polls (GET /v1/messages?wait=…); nil means one of
	// the handler's own, which hears only of what the API itself does.
	Changes *Changes
	// MaxBytesInFlight bounds the request data all requests being decoded
	// hold in memory at once (default 4 × MaxMessageSize, at least 64 MiB);
	// a request that would pass it is answered 503 with Retry-After.
	MaxBytesInFlight int64
	// Unsubscribe says that delivery makes one-click unsubscribe links
	// (outbox.Config.Deliverability.Unsubscribe is set), so that a
	// message may ask for them; without it "unsubscribe": true is refused.
	Unsubscribe bool
}

// Health is the daemon's readiness: whether it can accept mail now.
type Health interface {
	// Ready returns nil when ready, or why not; the error's text is one
	// sentence for the operator, and if it has a Reason() string method,
	// that is a short machine-readable key.
	Ready(ctx context.Context) error
	// StoreFailed reports a store operation that failed to commit.
	StoreFailed(err error)
}

// Handler is the API's http.Handler.
type Handler struct {
	cfg      Config
	client   *outbox.Client
	tokens   atomic.Pointer[[][sha256.Size]byte] // swapped by SetTokens
	log      *slog.Logger
	mux      *routeMux
	throttle *throttle.Throttle
	mem      *budget
	changes  *Changes
	// closing ends long polls when the server shuts down.
	closing   chan struct{}
	closeOnce sync.Once
}

// New returns the API handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Client == nil {
		return nil, errors.New("api: Config.Client is required")
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Throttle == nil {
		cfg.Throttle = throttle.New(throttle.Config{Logger: cfg.Logger})
	}
	if cfg.MaxBytesInFlight <= 0 {
		cfg.MaxBytesInFlight = max(4*cfg.MaxMessageSize, 64<<20)
	}
	cfg.MaxBytesInFlight = max(cfg.MaxBytesInFlight, requestBase)
	if cfg.Changes == nil {
		cfg.Changes = NewChanges()
	}
	h := &Handler{cfg: cfg, client: cfg.Client, log: cfg.Logger, mux: newRouteMux(),
		throttle: cfg.Throttle, mem: newBudget(cfg.MaxBytesInFlight), changes: cfg.Changes,
		closing: make(chan struct{})}
	if err := h.SetTokens(cfg.Tokens); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	auth := h.requireToken
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("POST /v1/messages", auth(h.postMessage))
	h.mux.Handle("GET /v1/messages", auth(h.listMessages))
	h.mux.Handle("POST /v1/messages/raw", auth(h.postRaw))
	h.mux.Handle("GET /v1/messages/{id}", auth(h.getMessage))
	h.mux.Handle("POST /v1/messages/{id}/retry", auth(h.retryMessage))
	h.mux.Handle("POST /v1/messages/{id}/cancel", auth(h.cancelMessage))
	h.suppressionRoutes()
	h.mux.Handle("DELETE /v1/messages/{id}", auth(h.deleteMessage))
	h.mux.Handle("DELETE /v1/messages", auth(h.deleteMessages))
	h.mux.Handle("POST /v1/messages/retry", auth(h.retryMatching))
	h.mux.Handle("POST /v1/messages/cancel", auth(h.cancelMatching))
	h.mux.Handle("GET /v1/messages/{id}/raw", auth(h.getRaw))
	h.mux.Handle("GET /v1/messages/{id}/content", auth(h.getContent))
	h.mux.Handle("GET /v1/messages/{id}/attachments/{n}", auth(h.getAttachment))
	h.mux.HandleFunc("GET /v1/openapi.json", h.getOpenAPI)
	// Method-less twins answer other methods with a JSON 405 instead of
	// ServeMux's plain-text one.
	h.mux.Handle("/healthz", notAllowed("GET, HEAD"))
	h.mux.Handle("/readyz", notAllowed("GET, HEAD"))
	h.mux.Handle("/v1/messages", notAllowed("GET, HEAD, POST, DELETE"))
	h.mux.Handle("/v1/messages/{id}", notAllowed("GET, HEAD, DELETE"))
	h.mux.Handle("/v1/messages/{id}/retry", notAllowed("POST"))
	h.mux.Handle("/v1/messages/{id}/cancel", notAllowed("POST"))
	h.mux.Handle("/v1/messages/{id}/raw", notAllowed("GET, HEAD"))
	h.mux.Handle("/v1/messages/{id}/content", notAllowed("GET, HEAD"))
	h.mux.Handle("/v1/messages/{id}/attachments/{n}", notAllowed("GET, HEAD"))
	h.mux.Handle("/v1/openapi.json", notAllowed("GET, HEAD"))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Msg: "No such API endpoint: " + r.URL.Path + "."})
	})
}

// ServeHTTP serves the API. A panic in a handler is logged and answered
// with a 500 rather than taking the daemon down.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &trackingWriter{ResponseWriter: w}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		h.log.Error("api: handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
		if !rw.wrote {
			writeError(rw, errInternal)
		}
	}()
	if fromAnotherSite(r) {
		writeError(rw, &apiError{Status: http.StatusForbidden,
			Msg: "The API does not answer requests a web page on another site makes through a browser."})
		return
	}
	h.mux.ServeHTTP(rw, r)
}

// fromAnotherSite reports a request a browser makes on behalf of a page of
// another origin. The API is for programs, which send no such headers; a
// browser does, even for the "simple" cross-site POSTs that need no CORS
// preflight — which would otherwise let any web page the operator visits
// submit mail to a daemon without a token on loopback.
func fromAnotherSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}

// trackingWriter records whether a response was started, so that panic
// recovery does not write a second status line.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// requireToken wraps next with bearer-token authentication, unless no
// tokens are configured. A request that presents a token takes its turn
// with the throttle first: an address that keeps presenting wrong tokens
// is slowed, then refused with 429 and Retry-After. A request without any
// token is not a guess and is simply refused.
func (h *Handler) requireToken(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(*h.tokens.Load()) == 0 {
			next(w, r)
			return
		}
		header := r.Header.Get("Authorization")
		if header == "" {
			h.unauthorized(w)
			return
		}
		ip := clientIP(r)
		wait, err := h.throttle.Admit(ip)
		var re *throttle.RefusedError
		if errors.As(err, &re) {
			writeError(w, tooManyAttempts(re.RetryAfter))
			return
		}
		if throttle.Sleep(r.Context(), wait) != nil {
			return // the client went away
		}
		if !h.validToken(header) {
			h.throttle.Failed(ip, "api", "")
			h.unauthorized(w)
			return
		}
		next(w, r)
	})
}

func (h *Handler) unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="outbox"`)
	writeError(w, &apiError{Status: http.StatusUnauthorized,
		Msg: "A valid API token is required: send it as \"Authorization: Bearer TOKEN\"."})
}

// tooManyAttempts is the 429 for an address refused by the throttle.
func tooManyAttempts(retry time.Duration) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, RetryAfter: max(1, int(retry.Round(time.Second)/time.Second)),
		Msg: "Too many requests with a wrong API token from your address; try again later."}
}

// clientIP is the address of the request's peer.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Protect requires the API's bearer token for next too (the daemon's
// /metrics), so one set of tokens guards everything on the HTTP port.
func (h *Handler) Protect(next http.Handler) http.Handler {
	return h.requireToken(next.ServeHTTP)
}

// validToken checks an Authorization header against every configured
// token in constant time, without stopping at the first match.
func (h *Handler) validToken(header string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	tokens := *h.tokens.Load()
	for i := range tokens {
		match |= subtle.ConstantTimeCompare(sum[:], tokens[i][:])
	}
	return match == 1
}

func notAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed,
			Msg: "Method " + r.Method + " is not allowed here; use " + allow + "."})
	})
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether the daemon can accept mail: Health's verdict
// (a store that commits, disk space, not shutting down) when it is set,
// otherwise whether the store answers a cheap query. Unready is 503 with
// the reason in the JSON body.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	// A store that hangs is as unready as one that fails.
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var err error
	if h.cfg.Health != nil {
		err = h.cfg.Health.Ready(ctx)
	} else if _, err = h.client.Store().Counts(ctx); err != nil {
		h.log.Warn("api: readiness check failed", "err", err)
		err = errors.New("The message store is not reachable.")
	}
	if err != nil {
		reason := "unavailable"
		var rs interface{ Reason() string }
		if errors.As(err, &rs) {
			reason = rs.Reason()
		}
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": reason,
			"error": sentence(err.Error())})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
