package bounce

import (
	"bytes"
	"strings"
	"testing"
)

// DSNs written by a real Postfix 3.7 (testdata/postfix/capture.sh made
// them) for mail sent with a VERP return path and ENVID: the report names
// the recipient, status and envelope id, and the returned header carries
// the return path, whose token verifies.
func TestPostfixDSNs(t *testing.T) {
	v, err := NewVERP("bounces.outbox.test", bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, rcpt, status, diag, msgID string
		action                          Action
		permanent                       bool
	}{
		{"postfix-failed-hdrs.eml", "nobody@dest.test", "5.1.1", "550 5.1.1 <nobody@dest.test>: Recipient address    rejected: User unknown in local recipient table", "<postfix-capture-1@outbox.test>", ActionFailed, true},
		{"postfix-failed-full.eml", "nobody2@dest.test", "5.1.1", "550 5.1.1 <nobody2@dest.test>: Recipient address    rejected: User unknown in local recipient table", "<postfix-capture-3@outbox.test>", ActionFailed, true},
		{"postfix-delayed.eml", "carol@slow.dest.test", "4.2.1", "451 4.2.1 <carol@slow.dest.test>: mailbox temporarily    unavailable, try again later", "<postfix-capture-2@outbox.test>", ActionDelayed, false},
		{"postfix-expired.eml", "carol@slow.dest.test", "4.2.1", "451 4.2.1 <carol@slow.dest.test>: mailbox temporarily    unavailable, try again later", "<postfix-capture-2@outbox.test>", ActionFailed, false},
	} {
		rep, err := parseFile(t, tc.file)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if rep.Kind != KindDSN || rep.ReportingMTA != "mta.outbox.test" || rep.EnvelopeID != "0190a3b2-7c4d-7def-8123-456789abcdef" || len(rep.Recipients) != 1 {
			t.Errorf("%s: %+v", tc.file, rep)
			continue
		}
		r := rep.Recipients[0]
		if r.FinalRecipient != tc.rcpt || r.OriginalRecipient != tc.rcpt || r.Action != tc.action || r.Status != tc.status ||
			r.DiagnosticCode != tc.diag || r.RemoteMTA != "127.0.0.1" || r.Permanent() != tc.permanent {
			t.Errorf("%s: recipient %+v", tc.file, r)
		}
		if rep.Original.MessageID != tc.msgID || !strings.HasPrefix(rep.Original.From, "Alice") {
			t.Errorf("%s: original %+v", tc.file, rep.Original)
		}
		id, rcpt, err := v.Parse(rep.Original.ReturnPath)
		if err != nil || id != "0190a3b2-7c4d-7def-8123-456789abcdef" || rcpt != 1 {
			t.Errorf("%s: return path %q: %s %d %v", tc.file, rep.Original.ReturnPath, id, rcpt, err)
		}
	}
}
