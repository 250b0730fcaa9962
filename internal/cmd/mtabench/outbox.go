package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	benchUser     = "bench"
	benchPassword = "bench-password-0123456789"
	benchToken    = "bench-token-0123456789abcdef"
)

// outboxServer is a running 'outbox serve'.
type outboxServer struct {
	cmd      *exec.Cmd
	cg       *cpuGroup
	dir      string
	smtpAddr string
	label    string
	dropDB   func()
	keep     bool
}

func startOutbox(ctx context.Context, c *config, sk *sinks) (*outboxServer, error) {
	dir, err := os.MkdirTemp("", "mtabench-outbox-")
	if err != nil {
		return nil, err
	}
	s := &outboxServer{dir: dir, label: "outbox (" + c.db + ")", keep: c.keep}
	db := "sqlite:" + dir + "/outbox.db"
	if c.db == "postgres" {
		if db, s.dropDB, err = freshDatabase(ctx, c.postgres); err != nil {
			return nil, err
		}
	} else if c.db != "sqlite" {
		return nil, fmt.Errorf("-db %q: want sqlite or postgres", c.db)
	}
	httpAddr, smtpAddr := freeAddr(), freeAddr()
	s.smtpAddr = smtpAddr
	args := []string{"serve", "--db", db, "--http", httpAddr, "--smtp", smtpAddr}
	args = append(args, sk.outboxFlags(c)...)
	args = append(args, "--smtp-user", benchUser+":"+benchPassword, "--api-token", benchToken,
		"--hostname", "outbox.localhost", "--log-level", "warn")
	args = append(args, splitFlags(c.extra)...)
	s.cg = newCPUGroup("outbox")
	shell := s.cg.shellPrefix() + `exec "$0" "$@"`
	s.cmd = exec.Command("/bin/sh", append([]string{"-c", shell, c.outbox}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	s.cmd.Env = os.Environ()
	if c.profile != "" {
		s.cmd.Env = append(s.cmd.Env, "OUTBOX_CPU_PROFILE="+c.profile)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.cg.pid = s.cmd.Process.Pid
	if err := waitReady("http://"+httpAddr+"/readyz", smtpAddr); err != nil {
		s.stop()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "mtabench: outbox %s running (store %s, CPU from %s)\n", c.outbox, c.db, s.cg.describe())
	return s, nil
}

func (s *outboxServer) databaseCPU() (time.Duration, error) {
	if s.dropDB == nil {
		return 0, nil
	}
	return processCPU("postgres")
}

func (s *outboxServer) name() string                { return s.label }
func (s *outboxServer) submitAddr() string          { return s.smtpAddr }
func (s *outboxServer) user() (string, string)      { return benchUser, benchPassword }
func (s *outboxServer) cpu() (time.Duration, error) { return s.cg.usage() }

// stop ends the daemon gracefully (SIGTERM), so that a CPU profile is
// written, and cleans up.
func (s *outboxServer) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		err = <-done
	}
	s.cg.remove()
	if s.dropDB != nil {
		s.dropDB()
	}
	if !s.keep {
		os.RemoveAll(s.dir)
	}
	return err
}

// freshDatabase creates an empty database on the PostgreSQL server at dsn
// and returns its DSN and a function that drops it.
func freshDatabase(ctx context.Context, dsn string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	name := fmt.Sprintf("mtabench_%d", os.Getpid())
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	cfg := conn.Config()
	conn.Close(ctx)
	fresh := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	drop := func() {
		if c, err := pgx.Connect(context.Background(), dsn); err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	return fresh, drop, nil
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitReady waits for the HTTP readiness URL (when given) to answer 200
// and for the SMTP port to accept connections.
func waitReady(readyURL, smtpAddr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		if readyURL != "" {
			req, _ := http.NewRequest("GET", readyURL, nil)
			req.Header.Set("Authorization", "Bearer "+benchToken)
			resp, err := http.DefaultClient.Do(req)
			ok = err == nil && resp.StatusCode == 200
			if resp != nil {
				resp.Body.Close()
			}
		}
		if ok {
			if c, err := net.Dial("tcp", smtpAddr); err == nil {
				c.Close()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after 30s (%s, smtp %s)", strings.TrimSpace(readyURL), smtpAddr)
}
