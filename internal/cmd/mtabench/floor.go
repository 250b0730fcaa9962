package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The floor: a go-smtp server that does what a submission server must on
// the wire (TLS, AUTH, the transaction, reading the body) and nothing
// else — no store, no delivery. Its CPU per message is the least any Go
// server using go-smtp pays under the same load, the yardstick for the
// rest of outbox's cost. It runs as a child process of mtabench
// ("mtabench floor-server ADDR CERT KEY") so its CPU is accounted alone.

const floorServerArg = "floor-server"

func runFloorServer(args []string) {
	if len(args) != 3 {
		log.Fatal("usage: mtabench floor-server ADDR CERT KEY")
	}
	cert, err := tls.LoadX509KeyPair(args[1], args[2])
	if err != nil {
		log.Fatal(err)
	}
	s := smtp.NewServer(floorBackend{})
	s.Domain = "floor.localhost"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(s.Serve(l))
}

type floorBackend struct{}

func (floorBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &floorSession{}, nil }

type floorSession struct{}

func (*floorSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (*floorSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != benchUser || pass != benchPassword {
			return errors.New("invalid credentials")
		}
		return nil
	}), nil
}
func (*floorSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*floorSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*floorSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (*floorSession) Reset()                               {}
func (*floorSession) Logout() error                        { return nil }

// floorServer is the floor server running as a child process.
type floorServer struct {
	cmd  *exec.Cmd
	cg   *cpuGroup
	addr string
	dir  string
	sink *sink // counts nothing: the floor delivers nowhere
}

func startFloor(_ context.Context, _ *config, _ string) (*floorServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mtabench-floor-")
	if err != nil {
		return nil, err
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := writeSelfSigned(cert, key); err != nil {
		return nil, err
	}
	s := &floorServer{addr: freeAddr(), dir: dir, cg: newCPUGroup("floor")}
	s.cmd = exec.Command("/bin/sh", "-c", s.cg.shellPrefix()+`exec "$0" "$@"`, self, floorServerArg, s.addr, cert, key)
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.cg.pid = s.cmd.Process.Pid
	if err := waitReady("", s.addr); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *floorServer) name() string                { return "go-smtp floor (discard)" }
func (s *floorServer) submitAddr() string          { return s.addr }
func (s *floorServer) user() (string, string)      { return benchUser, benchPassword }
func (s *floorServer) cpu() (time.Duration, error) { return s.cg.usage() }

func (s *floorServer) stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	err := s.cmd.Wait()
	s.cg.remove()
	os.RemoveAll(s.dir)
	if err != nil && !isSignalled(err) {
		return fmt.Errorf("floor server: %w", err)
	}
	return nil
}

func isSignalled(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && !ee.Exited()
}
