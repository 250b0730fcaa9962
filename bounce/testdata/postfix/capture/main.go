// Command capture is the loopback SMTP server capture.sh delivers to: it
// refuses *@dest.test (550 5.1.1), defers *@slow.dest.test (451 4.2.1)
// and saves every message it accepts (the DSNs Postfix sends back) as
// captured-N-*.eml in its working directory.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-smtp"
)

var n atomic.Int32

type backend struct{}

func (backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{}, nil }

type session struct{ from string }

func (s *session) AuthPlain(string, string) error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	log.Printf("RCPT %s (from %q)", to, s.from)
	if strings.HasSuffix(to, "@slow.dest.test") {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "<" + to + ">: mailbox temporarily unavailable, try again later"}
	}
	if strings.HasSuffix(to, "@dest.test") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected: User unknown in local recipient table"}
	}
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	f, err := os.CreateTemp(".", fmt.Sprintf("captured-%d-*.eml", n.Add(1)))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return err
	}
	log.Printf("DATA from %q saved %s (%d bytes)", s.from, f.Name(), len(b))
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func main() {
	srv := smtp.NewServer(backend{})
	srv.Addr = "127.0.0.1:2601"
	srv.Domain = "mx.dest.test"
	srv.AllowInsecureAuth = true
	log.Fatal(srv.ListenAndServe())
}
