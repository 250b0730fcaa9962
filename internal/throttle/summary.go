package throttle

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// maxNamed bounds the user names and services a summary line lists.
const maxNamed = 5

// summary is what one address did since the last log line.
type summary struct {
	failures, refused, succeeded int
	users, services              []string
	moreUsers                    bool
}

func (s *summary) failed(service, user string) {
	s.failures++
	if service != "" && !slices.Contains(s.services, service) && len(s.services) < maxNamed {
		s.services = append(s.services, service)
	}
	if user == "" || slices.Contains(s.users, user) {
		return
	}
	if len(s.users) == maxNamed {
		s.moreUsers = true
		return
	}
	s.users = append(s.users, logSafe(user))
}

// note updates address a's summary and makes sure a flush is scheduled.
// Only addresses with failures or refusals are logged; a success alone is
// not news.
func (t *Throttle) note(a netip.Prefix, now time.Time, update func(*summary)) {
	s := t.summary[a]
	if s == nil {
		if len(t.summary) >= t.cfg.MaxEntries {
			return // the next flush will say how busy it was
		}
		s = &summary{}
		t.summary[a] = s
	}
	update(s)
	if t.flush == nil {
		t.flush = time.AfterFunc(t.cfg.LogInterval, t.logSummaries)
	}
}

// logSummaries writes one line per address that failed or was refused
// since the last call.
func (t *Throttle) logSummaries() {
	t.mu.Lock()
	sums := t.summary
	t.summary = make(map[netip.Prefix]*summary)
	t.flush = nil
	t.mu.Unlock()
	for a, s := range sums {
		if s.failures == 0 && s.refused == 0 {
			continue
		}
		users := strings.Join(s.users, ",")
		if s.moreUsers {
			users += ",…"
		}
		t.cfg.Logger.Warn("auth: failed attempts", "remote", a.Addr().String(), "failures", s.failures,
			"refused", s.refused, "succeeded", s.succeeded, "users", users,
			"via", strings.Join(s.services, ","), "interval", t.cfg.LogInterval)
	}
}

// Flush logs the pending summaries now (at shutdown, and in tests).
func (t *Throttle) Flush() {
	t.mu.Lock()
	if t.flush != nil {
		t.flush.Stop()
	}
	t.mu.Unlock()
	t.logSummaries()
}

// logSafe bounds a client-supplied user name for the log and replaces
// control characters, so a log line cannot be forged.
func logSafe(s string) string {
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == ',' {
			return '?'
		}
		return r
	}, s)
}
