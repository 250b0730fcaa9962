package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/metrics"
	"github.com/outbox-mail/outbox/queue"
	smtpsubmit "github.com/outbox-mail/outbox/submission"
	"github.com/outbox-mail/outbox/templates"
	"github.com/outbox-mail/outbox/web"
	"github.com/outbox-mail/outbox/webhook"
)

// runServe implements 'outbox serve': it runs until ctx is cancelled
// (SIGINT or SIGTERM), then shuts down gracefully; SIGHUP reloads the
// configuration (reload.go).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// At once, so that a SIGHUP during start-up is a reload once running
	// rather than the end of the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := parseServeConfig(args)
	if err != nil {
		return err
	}
	if err := cfg.prepare(); err != nil {
		return err
	}
	level, err := parseLevel(cfg.logLevel)
	if err != nil {
		return err
	}
	lv := new(slog.LevelVar)
	lv.Set(level)
	log, err := newLogger(cfg, lv, stderr)
	if err != nil {
		return err
	}
	memory := setMemoryLimits()
	d, err := newService(ctx, cfg, log)
	if err != nil {
		return err
	}
	d.args, d.level, d.hup, d.memory = args, lv, hup, memory
	return d.run(ctx)
}

func parseLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return 0, usagef("--log-level: %q is not debug, info, warn or error", s)
	}
	return level, nil
}

func newLogger(cfg *serveConfig, level slog.Leveler, w io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format: %q is not text or json", cfg.logFormat)
}

// service is a running 'outbox serve': the store, the delivery workers, the
// webhook dispatcher and the two listeners.
type service struct {
	cfg        *serveConfig
	log        *slog.Logger
	store      queue.Store
	transport  delivery.Transport
	routing    *routing
	client     *outbox.Client
	hooks      *webhook.Dispatcher
	httpServer *http.Server
	mux        *httpMux // the routes of httpServer, for the OpenAPI check
	httpLn     net.Listener
	smtpServer *smtpsubmit.Server
	smtpLn     net.Listener
	hard       *hardened
	deliver    *deliverability
	metrics    *metrics.Metrics

	// For reloads (reload.go): the command line to read again, the
	// configuration in force (touched by the reload loop only), what a
	// reload changes in place.
	args    []string
	hup     chan os.Signal
	current *serveConfig
	level   *slog.LevelVar
	api     *api.Handler
	dash    http.Handler
	open    atomic.Bool // the API has no tokens: loopback hosts only
	// hooksStarted: the webhook dispatcher runs (it starts once there
	// are endpoints).
	hooksStarted bool
	memory       []any             // the GC settings, for the start-up log
	dkimIDs      map[string]string // the DKIM keys in force, for a reload to compare
}

func newService(ctx context.Context, cfg *serveConfig, log *slog.Logger) (*service, error) {
	d := &service{cfg: cfg, log: log, current: cfg, level: new(slog.LevelVar)}
	if err := checkAccess(cfg); err != nil {
		return nil, err
	}
	rt, err := buildRouting(cfg, log)
	if err != nil {
		return nil, err
	}
	d.routing, d.transport = rt, delivery.Capture{}
	if err := d.harden(); err != nil {
		d.hard.release()
		return nil, err
	}
	if d.store, err = openStore(ctx, cfg.db, queue.Options{Lifetime: cfg.maxLifetime,
		Transcripts: queue.TranscriptPolicy(cfg.transcripts), Search: queue.SearchMode(cfg.search), Logger: log}); err != nil {
		d.hard.release()
		// A driver's error may quote the DSN it could not use.
		return nil, scrubError(err, cfg.db)
	}
	d.newHealth()
	if err := d.build(); err != nil {
		d.store.Close()
		d.hard.release()
		return nil, err
	}
	return d, nil
}

// checkAccess enforces the no-open-relay rule: a listener goes without
// authentication only on loopback, and only when no credentials are set.
// A reload checks the new configuration with it too.
func checkAccess(c *serveConfig) error {
	if len(c.apiTokens) == 0 && !isLoopbackAddr(c.httpAddr) {
		return usagef("--http %s is not a loopback address: set --api-token (or OUTBOX_API_TOKEN) to protect the API", c.httpAddr)
	}
	if c.smtpAddr != "off" && len(c.smtpUsers) == 0 && !isLoopbackAddr(c.smtpAddr) {
		return usagef("--smtp %s is not a loopback address: set --smtp-user NAME:PASSWORD (or OUTBOX_SMTP_USER) so it is not an open relay", c.smtpAddr)
	}
	if c.smtpAddr != "off" && len(c.smtpUsers) == 0 && c.hard.smtpRequireAuth {
		return usagef("--smtp-require-auth needs at least one --smtp-user NAME:PASSWORD (or --smtp-user-file)")
	}
	if _, _, err := smtpUsers(c.smtpUsers); err != nil {
		return err
	}
	for _, t := range c.apiTokens {
		if len(t) < 16 {
			return usagef("--api-token: a token must be at least 16 characters")
		}
	}
	return nil
}

// isLoopbackAddr reports whether a listen address binds loopback only.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hostname(cfg *serveConfig) string {
	if cfg.hostname != "" {
		return cfg.hostname
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// build wires the client, webhooks, metrics, API and submission listener.
func (d *service) build() error {
	cfg := d.cfg
	m := d.newMetrics()
	hooks, err := newWebhooks(d.store, cfg.webhooks, d.log, m.WebhookPosted)
	if err != nil {
		return err
	}
	d.hooks = hooks
	if d.deliver, err = d.buildDeliverability(hooks); err != nil {
		return err
	}
	if d.dkimIDs, err = dkimKeyIDs(cfg.deliver.dkim); err != nil {
		return err
	}
	// Long polls of the API wake on new mail and on results.
	changes := api.NewChanges()
	occ := outbox.Config{Store: d.store, Transport: d.transport, Routing: d.routing.engine, Deliverability: d.deliver.engine,
		MaxConnections: d.routing.maxConns, DestinationConnections: d.routing.perDs, OnOutcome: m.Outcome,
		Retry: delivery.RetryPolicy{Initial: cfg.retryInitial, Max: cfg.retryMax}, Lease: cfg.lease,
		OnEnqueue: func(id string, src queue.Source) { m.Accepted(id, src); changes.Notify() }, Logger: d.log,
		// The dispatcher is there even without endpoints, which a reload
		// may add; with none, EventsFor makes none.
		Events: hooks.EventsFor, OnCancel: hooks.Cancelled,
		OnResult: func(c *queue.Claimed, r *queue.Result) {
			m.Result(c, r)
			changes.Notify()
			if len(r.Events) > 0 {
				hooks.Notify()
			}
		}}
	if d.client, err = outbox.New(occ); err != nil {
		return err
	}
	tmpl := templates.Builtin()
	if cfg.templates != "" {
		if tmpl, err = templates.Load(cfg.templates); err != nil {
			return usagef("--templates: %v", err)
		}
	}
	h, err := api.New(api.Config{Client: d.client, Tokens: cfg.apiTokens, Templates: tmpl,
		MaxMessageSize: int64(cfg.maxMessageSize), Logger: d.log, Hostname: hostname(cfg),
		Throttle: d.hard.throttle, Health: d.hard.health, Unsubscribe: d.deliver.engine.Unsubscribe != nil,
		Changes: changes})
	if err != nil {
		return err
	}
	wcfg := web.Config{Client: d.client, Tokens: cfg.apiTokens, Logger: d.log, Throttle: d.hard.throttle}
	rel, err := newReleaser(cfg, d.store)
	if err != nil {
		return err
	}
	if rel != nil {
		wcfg.Release, wcfg.ReleaseRoutes = rel.release, rel.routes()
	}
	dash, err := web.New(wcfg)
	if err != nil {
		return err
	}
	d.api, d.dash = h, dash
	mux := newHTTPMux()
	d.mux = mux
	mux.Handle("/metrics", h.Protect(m.Handler()))
	mux.Handle("/v1/", h)
	mux.Handle("/healthz", h)
	mux.Handle("/readyz", h)
	mux.Handle("/", dash)
	d.open.Store(len(cfg.apiTokens) == 0)
	handler := whileOpen(&d.open, loopbackHostOnly(mux), mux)
	handler = d.withUnsubscribe(handler)
	handler = healthOnlyWhenFull(handler)
	d.httpServer = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ConnContext: connContext,
		ReadTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	// Shutdown waits for requests in progress: long polls answer at once.
	d.httpServer.RegisterOnShutdown(h.Shutdown)
	return d.buildSubmission()
}

// loopbackHostOnly guards a daemon without API tokens, which listens on
// loopback only: a request must also name a loopback host. A web page that
// DNS-rebinds its own name to 127.0.0.1 reaches the port, but its requests
// carry its own name as Host, so it can neither read the captured mail nor
// steer the queue.
func loopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "This outbox has no API token, so it answers only requests addressed to localhost, 127.0.0.1 or [::1].",
				http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// whileOpen serves through guarded while open is set (the API has no
// tokens, which a reload may change) and through next otherwise.
func whileOpen(open *atomic.Bool, guarded, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open.Load() {
			guarded.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func newWebhooks(st queue.Store, cfgs []webhookConfig, log *slog.Logger, onPost func(string)) (*webhook.Dispatcher, error) {
	hooks, err := webhook.New(webhook.Config{Store: st, Endpoints: webhookEndpoints(cfgs), Logger: log, OnPost: onPost})
	if err != nil {
		return nil, usagef("webhooks: %v", err)
	}
	return hooks, nil
}

func webhookEndpoints(cfgs []webhookConfig) []webhook.Endpoint {
	eps := make([]webhook.Endpoint, len(cfgs))
	for i, c := range cfgs {
		eps[i] = webhook.Endpoint{URL: c.URL, Secret: c.Secret, Events: c.Events}
	}
	return eps
}

func (d *service) buildSubmission() error {
	cfg := d.cfg
	if cfg.smtpAddr == "off" {
		return nil
	}
	users, senders, err := smtpUsers(cfg.smtpUsers)
	if err != nil {
		return err
	}
	tlsConfig, err := d.smtpTLS()
	if err != nil {
		return err
	}
	proxies, err := cfg.hard.proxies()
	if err != nil {
		return err
	}
	d.smtpServer, err = smtpsubmit.New(smtpsubmit.Config{
		Enqueuer: healthEnqueuer{next: d.client, health: d.hard.health}, Users: users, Senders: senders,
		TLSConfig: tlsConfig, AllowNoAuthOnLoopback: len(users) == 0 && !cfg.hard.smtpRequireAuth,
		MaxMessageSize: int64(cfg.maxMessageSize), Hostname: hostname(cfg), Logger: d.log,
		MaxConnections: d.hard.smtpCap, MaxConnectionsPerIP: cfg.hard.smtpMaxConnsPerIP,
		ProxyProtocol: proxies, Throttle: d.hard.throttle, Inbound: d.inbound(),
		OnReject: d.metrics.SubmissionRejected, OnAuthFailure: d.metrics.SubmissionAuthFailed})
	return err
}

// run listens, delivers until ctx is done, then shuts everything down in
// order: listeners first (nothing new is accepted), then delivery, then
// webhooks, then the store.
func (d *service) run(ctx context.Context) error {
	defer d.hard.release()
	defer d.store.Close()
	if err := d.listen(); err != nil {
		return err
	}
	d.hard.health.Start()
	if err := d.client.Start(); err != nil {
		return err
	}
	if d.hooks.Endpoints() > 0 {
		d.hooks.Start()
		d.hooksStarted = true
	}
	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(d.httpServer, d.httpLn) }()
	if d.smtpServer != nil {
		go func() { errc <- d.smtpServer.Serve(d.smtpLn) }()
	}
	go d.housekeep(ctx)
	d.announce()
	stopReloads := make(chan struct{})
	reloadsDone := make(chan struct{})
	go func() { defer close(reloadsDone); d.reloads(stopReloads) }()
	var err error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
	case err = <-errc:
		d.log.Error("listener failed; shutting down", "err", err)
	}
	close(stopReloads)
	<-reloadsDone // a reload under way ends before anything stops
	d.shutdown()
	return err
}

func serveHTTP(s *http.Server, l net.Listener) error {
	if err := s.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (d *service) listen() error {
	var err error
	if d.httpLn, err = net.Listen("tcp", d.cfg.httpAddr); err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	if d.httpLn, err = d.httpListener(d.httpLn); err != nil {
		d.httpLn.Close()
		return err
	}
	if d.smtpServer != nil {
		if d.smtpLn, err = net.Listen("tcp", d.cfg.smtpAddr); err != nil {
			d.httpLn.Close()
			return fmt.Errorf("--smtp: %w", err)
		}
	}
	return nil
}

// announce logs what runs where, and says loudly what an operator must
// know: mail is only captured, or a listener has no authentication.
func (d *service) announce() {
	d.announceHardening() // before "outbox is running": what has been said by then is all said
	d.announceDeliverability()
	if d.memory != nil {
		d.log.Info("memory settings", d.memory...)
	}
	d.log.Info("outbox is running", "http", d.httpLn.Addr().String(), "smtp", addrOf(d.smtpLn),
		"store", redactDSN(d.cfg.db), "transport", d.transportName())
	if d.routing.capture {
		d.log.Warn("NO RELAY CONFIGURED: mail without a --route of its own is captured locally and NOT sent anywhere; set --relay smtp://user:pass@host:587 or --relay mx to deliver")
	}
	if d.open.Load() {
		d.log.Warn("the HTTP API has no authentication (loopback only); set --api-token to require one")
	}
	if d.smtpServer != nil && len(d.cfg.smtpUsers) == 0 {
		d.log.Warn("SMTP submission accepts mail without authentication from loopback only; set --smtp-user to require it")
	}
}

func (d *service) transportName() string { return d.routing.describeRoutes() }

func addrOf(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}

func (d *service) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.hard.health.ShuttingDown()
	if err := d.httpServer.Shutdown(ctx); err != nil {
		d.log.Warn("HTTP shutdown", "err", err)
	}
	if d.smtpServer != nil {
		if err := d.smtpServer.Shutdown(ctx); err != nil {
			d.log.Warn("SMTP shutdown", "err", err)
		}
	}
	if err := d.client.Shutdown(ctx); err != nil {
		d.log.Warn("delivery shutdown cut in-flight sends short; they are due again", "err", err)
	}
	d.hooks.Shutdown(ctx)
	if c, ok := d.transport.(io.Closer); ok {
		c.Close()
	}
	d.log.Info("stopped")
}

// housekeep deletes finished messages older than the retention, hourly.
func (d *service) housekeep(ctx context.Context) {
	if d.cfg.retention <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := purgeOld(ctx, d.store, d.cfg.retention)
		if err != nil && ctx.Err() == nil {
			d.log.Error("housekeeping", "err", err)
		} else if n > 0 {
			d.log.Info("housekeeping: deleted finished messages", "messages", n, "older_than", d.cfg.retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
