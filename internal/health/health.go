// Package health decides whether the daemon is ready to accept mail: the
// store commits writes (a cheap periodic write probe, and the last failed
// commit), the disk under an embedded store has room, and the daemon is
// not shutting down. Liveness (/healthz) is not its business: a process
// that answers is alive, ready or not.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// Prober is a store that can prove it commits: one small durable write
// transaction. The SQLite and PostgreSQL stores implement it.
type Prober interface {
	ProbeWrite(ctx context.Context) error
}

// Defaults for Config.
const (
	DefaultInterval     = 10 * time.Second
	DefaultProbeTimeout = 5 * time.Second
)

// Config configures a Checker.
type Config struct {
	// Probe is the store's write probe; nil means none.
	Probe Prober
	// Interval is the time between probes (default 10s); a failed commit
	// reported through StoreFailed probes at once.
	Interval time.Duration
	// DiskPath is a directory on the disk whose free space is checked,
	// with MinFree the least free space in bytes, below which the daemon
	// is not ready; empty or zero: not checked.
	DiskPath string
	MinFree  int64
	// Logger receives readiness changes (default slog.Default()).
	Logger *slog.Logger
}

// NotReady says why the daemon is not ready. Its text is for anyone who
// can reach /readyz, so it names no path or store error; the log has the
// details.
type NotReady struct {
	reason, msg string
	detail      error // logged, never shown
}

func (e *NotReady) Error() string { return e.msg }

// Reason is a short machine-readable key: shutting_down, disk_full,
// store_write_failed or store_commit_failed.
func (e *NotReady) Reason() string { return e.reason }

// Checker tracks readiness. Its methods are safe for concurrent use.
type Checker struct {
	cfg  Config
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu          sync.Mutex
	shutting    bool
	probeErr    error  // the last probe's result
	commitErr   error  // the last failed commit, until a later success
	lastVerdict string // for logging changes only
	statfs      func(string) (int64, error)
	now         func() time.Time
}

// New returns a Checker; Start begins probing.
func New(cfg Config) *Checker {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Checker{cfg: cfg, kick: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), statfs: freeSpace}
}

// Start probes once now and then every Interval, until Stop.
func (c *Checker) Start() {
	c.probe()
	go c.loop()
}

func (c *Checker) loop() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.kick:
		}
		c.probe()
	}
}

// Stop ends probing; Ready keeps answering from the last results.
func (c *Checker) Stop() {
	c.once.Do(func() {
		close(c.stop)
	})
}

func (c *Checker) probe() {
	if c.cfg.Probe == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultProbeTimeout)
	err := c.cfg.Probe.ProbeWrite(ctx)
	cancel()
	c.mu.Lock()
	c.probeErr = err
	if err == nil {
		c.commitErr = nil // the store commits again
	}
	c.mu.Unlock()
	c.Ready(context.Background()) // logs a change
}

// StoreFailed reports a commit that failed (an enqueue the store could
// not make durable): the daemon is not ready until a probe or a commit
// succeeds. It probes at once, so recovery is seen within a probe.
func (c *Checker) StoreFailed(err error) {
	c.mu.Lock()
	c.commitErr = err
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// StoreSucceeded reports a commit that succeeded.
func (c *Checker) StoreSucceeded() {
	c.mu.Lock()
	c.commitErr = nil
	c.mu.Unlock()
}

// ShuttingDown makes the daemon unready for good, so load balancers stop
// sending it work while it drains.
func (c *Checker) ShuttingDown() {
	c.mu.Lock()
	c.shutting = true
	c.mu.Unlock()
}

// Ready returns nil when ready, otherwise a *NotReady saying why.
func (c *Checker) Ready(context.Context) error {
	err := c.verdict()
	c.mu.Lock()
	v := ""
	if err != nil {
		v = err.Error()
	}
	changed := v != c.lastVerdict
	c.lastVerdict = v
	c.mu.Unlock()
	if changed {
		if nr, ok := err.(*NotReady); ok {
			c.cfg.Logger.Warn("not ready", "reason", nr.reason, "why", v, "err", nr.detail)
		} else {
			c.cfg.Logger.Info("ready again")
		}
	}
	return err
}

func (c *Checker) verdict() error {
	c.mu.Lock()
	shutting, probeErr, commitErr := c.shutting, c.probeErr, c.commitErr
	c.mu.Unlock()
	switch {
	case shutting:
		return &NotReady{"shutting_down", "The daemon is shutting down.", nil}
	case probeErr != nil:
		return &NotReady{"store_write_failed", "The store cannot commit a write.", probeErr}
	case commitErr != nil:
		return &NotReady{"store_commit_failed", "The store failed to commit a message and has not committed one since.", commitErr}
	}
	if c.cfg.DiskPath != "" && c.cfg.MinFree > 0 {
		free, err := c.statfs(c.cfg.DiskPath)
		if err != nil {
			return &NotReady{"disk_full", "The free space on the store's disk cannot be read.", err}
		}
		if free < c.cfg.MinFree {
			return &NotReady{"disk_full", fmt.Sprintf("Only %s is free on the store's disk, below the floor of %s.",
				mib(free), mib(c.cfg.MinFree)), fmt.Errorf("%s: %d bytes free", c.cfg.DiskPath, free)}
		}
	}
	return nil
}

// freeSpace is the space an unprivileged process may still write under
// path.
func freeSpace(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
