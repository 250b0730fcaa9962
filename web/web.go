// Package web serves outbox's dashboard: an overview of the queue with live
// charts, a message list with filters and full-text search, each message's
// delivery history and its content in tabs (HTML with its inline images,
// text, links with a check of each, headers, source, attachments), and an
// inbox of captured mail, which can be released through Config.Release.
//
// Pages are rendered on the server with html/template; the only script is a
// small embedded poller that refreshes live regions. Access uses the API's
// bearer tokens through a login form and a signed session cookie, every
// state change is a POST with a CSRF token, and message HTML is served from
// a separate endpoint under a sandboxing Content-Security-Policy, so it
// never runs in the dashboard's origin; its cid: images load from their
// parts' URLs under a per-message key, the only images the frame's policy
// allows besides data: ones (and remote ones when the user asks).
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/internal/throttle"
	"github.com/outbox-mail/outbox/queue"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults for Config.
const (
	DefaultSessionTTL = 12 * time.Hour
	DefaultRefresh    = 2 * time.Second
	// DefaultInsightsTTL is how long overview insights are reused.
	DefaultInsightsTTL = 5 * time.Second
	// CaptureRoute is the route name of the capture transport, whose mail
	// the inbox lists.
	CaptureRoute = "capture"
)

// Config configures the dashboard. Client is required.
type Config struct {
	// Client is the outbox the dashboard reads and steers.
	Client *outbox.Client
	// Tokens are the API tokens that also log in to the dashboard. Empty
	// means no login (the daemon allows that on loopback only).
	Tokens []string
	// Logger receives server-side failures (default slog.Default()).
	Logger *slog.Logger
	// SessionKey signs session cookies; nil means a random key, so
	// sessions end when the process restarts.
	SessionKey []byte
	// SessionTTL is how long a login lasts (default 12h).
	SessionTTL time.Duration
	// Refresh is how often live regions poll (default 2s).
	Refresh time.Duration
	// InsightsTTL is how long the overview's charts, route table and
	// oldest message are reused across requests (default 5s; negative:
	// never), so many open dashboards cost one set of queries. Status
	// counts are always fresh.
	InsightsTTL time.Duration
	// Throttle slows and then refuses login guessing; nil means one with
	// the default settings. Share it with the API and the SMTP listener.
	Throttle *throttle.Throttle
	// Release, when set, gives captured mail a "release" action that
	// sends the stored message on for real: to the recipients the user
	// chose (the original ones unless changed), through route, one of
	// ReleaseRoutes. It returns once the next hop has answered; its error
	// is shown to the user, so it must hold no secret, and should carry
	// the server's reply. Every release is logged with the session that
	// asked.
	Release func(ctx context.Context, id string, to []string, route string) error
	// ReleaseRoutes names the routes Release can send through, the
	// default first; required with Release.
	ReleaseRoutes []string
}

// handler is the dashboard.
type handler struct {
	cfg      Config
	client   *outbox.Client
	store    queue.Reader
	insights queue.Insights // nil when the store has none
	log      *slog.Logger
	auth     *authenticator
	pages    map[string]*template.Template
	mux      *http.ServeMux
	cache    insightsCache
}

// New returns the dashboard handler, to mount at "/" beside the API.
func New(cfg Config) (http.Handler, error) {
	if cfg.Client == nil {
		return nil, errors.New("web: Config.Client is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Release != nil && len(cfg.ReleaseRoutes) == 0 {
		return nil, errors.New("web: Config.Release needs at least one of ReleaseRoutes")
	}
	if cfg.InsightsTTL == 0 {
		cfg.InsightsTTL = DefaultInsightsTTL
	}
	auth, err := newAuthenticator(cfg.Tokens, cfg.SessionKey, cfg.SessionTTL)
	if err != nil {
		return nil, err
	}
	auth.throttle = cfg.Throttle
	if auth.throttle == nil {
		auth.throttle = throttle.New(throttle.Config{Logger: cfg.Logger})
	}
	h := &handler{cfg: cfg, client: cfg.Client, store: cfg.Client.Store(), log: cfg.Logger,
		auth: auth, mux: http.NewServeMux()}
	h.insights, _ = h.store.(queue.Insights)
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

func (h *handler) routes() {
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	h.mux.HandleFunc("GET /login", h.loginPage)
	h.mux.HandleFunc("POST /login", h.login)
	h.mux.Handle("POST /logout", h.action(h.logout))
	h.mux.Handle("GET /{$}", h.page(h.overview))
	h.mux.Handle("GET /live/overview", h.fragment(h.overviewLive))
	h.mux.Handle("GET /messages", h.page(h.messageList))
	h.mux.Handle("GET /live/list", h.fragment(h.listLive))
	h.mux.Handle("GET /messages/{id}", h.page(h.messageDetail))
	h.mux.Handle("GET /live/messages/{id}", h.fragment(h.detailLive))
	h.mux.Handle("GET /messages/{id}/html", h.fragment(h.messageHTML))
	h.mux.Handle("GET /messages/{id}/attachments/{n}", h.fragment(h.attachment))
	// The sandboxed frame has no session cookie: cidPart checks its key.
	h.mux.HandleFunc("GET /messages/{id}/cid/{cid}", h.cidPart)
	h.mux.Handle("GET /messages/{id}/raw", h.fragment(h.raw))
	h.mux.Handle("GET /messages/{id}/release", h.page(h.releaseForm))
	h.mux.Handle("POST /messages/{id}/release", h.action(h.release))
	h.mux.Handle("POST /messages/{id}/retry", h.action(h.retry))
	h.mux.Handle("POST /messages/{id}/requeue", h.action(h.requeue))
	h.mux.Handle("POST /messages/{id}/cancel", h.action(h.cancel))
	h.mux.Handle("GET /inbox", h.page(h.inbox))
	h.suppressionRoutes()
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.notFound(w, r, "There is no page at this address.")
	})
}

// ServeHTTP sets the security headers every response carries, then serves.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Pages load only our own script and style; nothing may frame them.
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-src 'self'; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.Error("web: handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
			http.Error(w, "Internal error.", http.StatusInternalServerError)
		}
	}()
	h.mux.ServeHTTP(w, r)
}

// cacheStatic lets browsers keep the embedded assets for a while; they
// change only with the binary.
func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}
