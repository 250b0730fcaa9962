package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/queue"
)

// cli runs the built outbox command against d, with the token given
// (OUTBOX_URL and OUTBOX_TOKEN, as an operator sets them), and returns
// its exit code and output.
func (d *daemonProc) cli(t *testing.T, token string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTBOX_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "OUTBOX_URL=http://"+d.httpAddr, "OUTBOX_TOKEN="+token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("outbox %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

var moreRe = regexp.MustCompile(`more: outbox suppressions list --cursor (\S+)`)

// TestSuppressionsCLIEndToEnd: 'outbox suppressions add|list|remove',
// the built command, against the built daemon: what it adds stops mail
// the daemon is given, listing pages through and filters, what it
// removes lets mail through again; mistakes exit non-zero with one line
// on stderr.
func TestSuppressionsCLIEndToEnd(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	for _, args := range [][]string{
		{"add", "Gone@Dest.test", "--reason", "asked by phone"},
		{"add", "news@dest.test", "--scope", "shop.test", "--expires", "48h"},
		{"add", "a/b@dest.test"},
	} {
		code, out, errOut := d.cli(t, testToken, append([]string{"suppressions"}, args...)...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "suppressed ") {
			t.Fatalf("suppressions %v: exit %d %q %q", args, code, out, errOut)
		}
	}
	code, out, _ := d.cli(t, testToken, "suppressions", "list")
	if code != 0 || !strings.HasPrefix(out, "ADDRESS") || !strings.Contains(out, "gone@dest.test") ||
		!strings.Contains(out, "asked by phone") || !strings.Contains(out, "shop.test") || !strings.Contains(out, "a/b@dest.test") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if seen := d.cliPages(t); strings.Join(seen, " ") != "a/b@dest.test gone@dest.test news@dest.test" {
		t.Errorf("pages of one: %q", seen)
	}
	if _, out, _ := d.cli(t, testToken, "suppressions", "list", "--limit", "1"); moreRe.FindStringSubmatch(out) == nil {
		t.Errorf("a first page of one does not say how to go on:\n%s", out)
	}

	id := d.post(t, `{"from":"shop@example.com","to":["gone@dest.test","ok@dest.test"],"subject":"Hello","text":"x"}`)
	m := d.waitStatus(id, queue.StatusPartial)
	if m.Recipients[0].Status != queue.RecipientSuppressed || !strings.Contains(m.Recipients[0].Text, "asked by phone") ||
		m.Recipients[1].Status != queue.RecipientDelivered {
		t.Errorf("a message to a suppressed address: %+v", m.Recipients)
	}

	for _, bad := range [][]string{{"remove", "nobody@dest.test"}, {"remove", "news@dest.test"},
		{"add", "Ann <ann@dest.test>"}, {"add", "x@dest.test", "--expires", "soon"}} {
		code, _, errOut := d.cli(t, testToken, append([]string{"suppressions"}, bad...)...)
		if code == 0 || errOut == "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("suppressions %v: exit %d, stderr %q", bad, code, errOut)
		}
	}
	if code, _, errOut := d.cli(t, "a-wrong-token-0123456789", "suppressions", "list"); code == 0 || !strings.Contains(errOut, "token") {
		t.Errorf("a wrong token: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"remove", "gone@dest.test"}, {"remove", "a/b@dest.test"}, {"remove", "news@dest.test", "--scope", "shop.test"}} {
		code, out, errOut := d.cli(t, testToken, append([]string{"suppressions"}, args...)...)
		if code != 0 || !strings.HasPrefix(out, "removed "+args[1]) {
			t.Errorf("suppressions %v: exit %d %q %q", args, code, out, errOut)
		}
	}
	if code, out, _ := d.cli(t, testToken, "suppressions", "list"); code != 0 || !strings.Contains(out, "(no entries)") {
		t.Errorf("after removing all: exit %d\n%s", code, out)
	}
	again := d.post(t, `{"from":"shop@example.com","to":["gone@dest.test"],"subject":"Hello again","text":"x"}`)
	d.waitStatus(again, queue.StatusDelivered)
}

// cliPages lists the suppression list a page of one at a time with
// 'outbox suppressions list --json', following each page's cursor, and
// returns the addresses in order. The JSON must decode strictly.
func (d *daemonProc) cliPages(t *testing.T) []string {
	t.Helper()
	var seen []string
	args := []string{"suppressions", "list", "--limit", "1", "--json"}
	for range 10 {
		code, out, errOut := d.cli(t, testToken, args...)
		var page api.SuppressionPage
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&page); code != 0 || err != nil || len(page.Suppressions) != 1 {
			t.Fatalf("%v: exit %d %v\n%s%s", args, code, err, out, errOut)
		}
		seen = append(seen, page.Suppressions[0].Address)
		if page.NextCursor == "" {
			break
		}
		args = []string{"suppressions", "list", "--limit", "1", "--json", "--cursor", page.NextCursor}
	}
	return seen
}
