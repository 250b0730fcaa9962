// Command mtabench measures a mail server the way its users pay for it: the
// built daemon, submission over SMTP with STARTTLS and AUTH from many
// connections, relaying to a loopback SMTP sink. It reports accepted and
// end-to-end messages per second and the CPU time the server spent per
// message (all its processes, from a cpuacct cgroup when one can be made,
// else from /proc), for outbox and, side by side, for a private Postfix
// instance.
//
//	go build -o /tmp/outbox ./cmd/outbox
//	go run ./internal/cmd/mtabench -outbox /tmp/outbox -n 20000 -postfix
//
// It is a benchmark, not a test: run it on a quiet machine, several times.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

type config struct {
	outbox   string // path to the built outbox binary; empty: skip outbox
	db       string // outbox --db; empty: SQLite in a temporary directory
	postgres string // PostgreSQL server DSN for a -db=postgres run
	postfix  bool   // also measure a private Postfix instance
	n        int    // messages per run
	conns    int    // submission connections
	size     int    // message size in bytes
	warmup   int    // messages sent before measuring
	profile  string // outbox CPU profile file (warm-up and shutdown included)
	extra    string // extra outbox serve flags, space-separated
	keep     bool   // keep the temporary directories
	floor    bool   // also measure the floor: a go-smtp server that discards
	domains  int    // deliver direct to the MX hosts of this many domains (0: one relay)
	perDest  int    // --max-connections-per-destination with -domains
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == floorServerArg {
		runFloorServer(os.Args[2:])
		return
	}
	var c config
	flag.StringVar(&c.outbox, "outbox", "", "built outbox binary to measure (empty: skip)")
	flag.StringVar(&c.db, "db", "sqlite", "outbox store: sqlite, or postgres (a fresh database on -postgres-dsn)")
	flag.StringVar(&c.postgres, "postgres-dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server for -db postgres")
	flag.BoolVar(&c.postfix, "postfix", false, "also measure a private Postfix instance (Debian package postfix, sasl2-bin)")
	flag.IntVar(&c.n, "n", 20000, "messages per run")
	flag.IntVar(&c.conns, "conns", 16, "submission connections")
	flag.IntVar(&c.size, "size", 2048, "message size in bytes")
	flag.IntVar(&c.warmup, "warmup", 500, "messages sent before measuring")
	flag.StringVar(&c.profile, "cpuprofile", "", "write outbox's CPU profile of the measured load here")
	flag.StringVar(&c.extra, "outbox-flags", "", "extra 'outbox serve' flags, space-separated")
	flag.BoolVar(&c.keep, "keep", false, "keep temporary directories")
	flag.IntVar(&c.domains, "domains", 0, "deliver direct to MX hosts of this many domains (in-process DNS, 4 sinks on 127.0.0.2-5) instead of one relay")
	flag.IntVar(&c.perDest, "per-destination", 2, "outbox --max-connections-per-destination with -domains")
	flag.BoolVar(&c.floor, "floor", false, "also measure the floor: a go-smtp server with TLS and AUTH that discards every message")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, &c); err != nil {
		fmt.Fprintln(os.Stderr, "mtabench:", err)
		os.Exit(1)
	}
}

// server is a mail server under test, running and ready for submission.
type server interface {
	name() string
	submitAddr() string
	user() (name, password string)
	// cpu returns the CPU time all the server's processes have used.
	cpu() (time.Duration, error)
	stop() error
}

func run(ctx context.Context, c *config) error {
	var results []result
	if c.outbox != "" {
		r, err := measure(ctx, c, func(sk *sinks) (server, error) { return startOutbox(ctx, c, sk) })
		if err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		results = append(results, r)
	}
	if c.postfix && c.domains > 0 {
		return fmt.Errorf("-postfix measures one relay; it cannot be pointed at the benchmark's DNS server, so leave out -domains")
	}
	if c.postfix {
		r, err := measure(ctx, c, func(sk *sinks) (server, error) { return startPostfix(ctx, c, sk.addr()) })
		if err != nil {
			return fmt.Errorf("postfix: %w", err)
		}
		results = append(results, r)
	}
	if c.floor {
		r, err := measure(ctx, c, func(sk *sinks) (server, error) { return startFloor(ctx, c, sk.addr()) })
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		results = append(results, r)
	}
	if len(results) == 0 {
		return fmt.Errorf("nothing to measure: give -outbox BINARY and/or -postfix")
	}
	printResults(c, results)
	return nil
}

// databaseUser is a server whose database runs in processes of its own.
type databaseUser interface {
	databaseCPU() (time.Duration, error)
}

// result is one server's figures.
type result struct {
	name                 string
	n                    int
	accepted, e2e        time.Duration
	cpu                  time.Duration
	dbCPU                time.Duration // the database server's, when it is another process
	acceptP50, acceptP99 time.Duration
}

func measure(ctx context.Context, c *config, start func(sk *sinks) (server, error)) (result, error) {
	sk, err := startSinks(c)
	if err != nil {
		return result{}, err
	}
	defer sk.close()
	srv, err := start(sk)
	if err != nil {
		return result{}, err
	}
	defer srv.stop()
	total := c.warmup + c.n
	_, discards := srv.(*floorServer)
	// Warm up: connections, caches, the first database pages.
	if c.warmup > 0 {
		if _, err := submit(ctx, srv, c, c.warmup); err != nil {
			return result{}, fmt.Errorf("warm-up: %w", err)
		}
		if !discards {
			if err := sk.wait(ctx, c.warmup, 2*time.Minute); err != nil {
				return result{}, fmt.Errorf("warm-up: %w", err)
			}
		}
		settle(srv)
	}
	cpu0, err := srv.cpu()
	if err != nil {
		return result{}, err
	}
	db, hasDB := srv.(databaseUser)
	var db0 time.Duration
	if hasDB {
		db0, _ = db.databaseCPU()
	}
	began := time.Now()
	lat, err := submit(ctx, srv, c, c.n)
	if err != nil {
		return result{}, err
	}
	accepted := time.Since(began)
	if !discards {
		if err := sk.wait(ctx, total, 10*time.Minute); err != nil {
			return result{}, err
		}
	}
	e2e := time.Since(began)
	settle(srv)
	cpu1, err := srv.cpu()
	if err != nil {
		return result{}, err
	}
	var dbCPU time.Duration
	if hasDB {
		db1, _ := db.databaseCPU()
		dbCPU = db1 - db0
	}
	return result{name: srv.name(), n: c.n, accepted: accepted, e2e: e2e, cpu: cpu1 - cpu0, dbCPU: dbCPU,
		acceptP50: percentile(lat, 0.50), acceptP99: percentile(lat, 0.99)}, nil
}

// settle waits until the server has stopped using CPU (results written,
// queue files removed), so the work after the last delivery is counted.
func settle(srv server) {
	prev, _ := srv.cpu()
	for range 40 {
		time.Sleep(250 * time.Millisecond)
		cur, err := srv.cpu()
		if err != nil || cur-prev < 5*time.Millisecond {
			return
		}
		prev = cur
	}
}

func printResults(c *config, rs []result) {
	to := "relayed to a loopback go-smtp sink"
	if c.domains > 0 {
		to = fmt.Sprintf("delivered direct to the MX hosts of %d domains (%d connections each; 4 go-smtp sinks on 127.0.0.2-5, DNS in process)",
			c.domains, c.perDest)
	}
	fmt.Printf("%d messages of %d bytes over %d SMTP connections (STARTTLS + AUTH PLAIN), %s\n",
		c.n, c.size, c.conns, to)
	fmt.Printf("%-22s %14s %14s %16s %12s %12s\n", "server", "accepted/s", "end-to-end/s", "CPU µs/message", "accept p50", "accept p99")
	for _, r := range rs {
		fmt.Printf("%-22s %14.0f %14.0f %16.0f %12s %12s\n", r.name,
			float64(r.n)/r.accepted.Seconds(), float64(r.n)/r.e2e.Seconds(),
			float64(r.cpu.Microseconds())/float64(r.n), r.acceptP50.Round(10*time.Microsecond), r.acceptP99.Round(10*time.Microsecond))
		if r.dbCPU > 0 {
			fmt.Printf("%-22s %46.0f   (the PostgreSQL server's own processes)\n", "  + database", float64(r.dbCPU.Microseconds())/float64(r.n))
		}
	}
	if len(rs) == 2 {
		a, b := rs[0], rs[1]
		fmt.Printf("%s / %s: accepted %.1f×, end-to-end %.1f×, CPU per message %.2f×\n", a.name, b.name,
			b.accepted.Seconds()/a.accepted.Seconds(), b.e2e.Seconds()/a.e2e.Seconds(),
			a.cpu.Seconds()/b.cpu.Seconds())
	}
}

func splitFlags(s string) []string { return strings.Fields(s) }
