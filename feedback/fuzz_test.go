package feedback

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/outbox-mail/outbox/bounce"
	"github.com/outbox-mail/outbox/queue"
)

// FuzzEvent reads arbitrary mail as a report and turns what it finds
// into the event Receive would record: never a panic, only a defined
// history type, and a reply code that is none or a real one.
func FuzzEvent(f *testing.F) {
	for _, name := range []string{"dsn-failed.eml", "postfix-delayed.eml", "postfix-failed-full.eml", "arf.eml", "qmail.eml",
		"exim-plain.eml", "bad-truncated.eml", "not-autoreply.eml"} {
		if b, err := os.ReadFile(filepath.Join("..", "bounce", "testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := bounce.Parse(bytes.NewReader(body), 64<<10)
		if err != nil {
			return
		}
		e, ok := eventOf(rep)
		if !ok {
			return
		}
		if !e.Type.Valid() || e.Type == queue.HistoryComplained != (rep.Kind == bounce.KindFeedback) {
			t.Fatalf("report of kind %s made event %+v", rep.Kind, e)
		}
		if e.Code != 0 && (e.Code < 200 || e.Code > 599) {
			t.Fatalf("reply code %d from %+v", e.Code, rep.Recipients)
		}
	})
}

func TestReplyCode(t *testing.T) {
	for in, want := range map[string]int{"550 5.1.1 no": 550, "550": 550, "451-4.2.1 wait": 451, "5501 x": 0,
		"abc": 0, "": 0, "999 x": 0, "199 x": 0, "55": 0} {
		if got := replyCode(in); got != want {
			t.Errorf("replyCode(%q) = %d, want %d", in, got, want)
		}
	}
}
