package main

import (
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/outbox-mail/outbox/web"
)

// SIGHUP reloads the configuration: the command line is read again as at
// start-up (its flags and environment variables are the same, so they keep
// winning), which reads the --config file and the *-file secrets again.
// Each part of the configuration that can change in place is a reloader;
// a reload prepares every one of them before it applies any, so a file or
// a setting that does not check changes nothing and is refused with one
// log line. A setting no reloader takes is logged as needing a restart,
// and the value in force stays.
//
// To make another setting reloadable, add a reloader to reloaders: its
// keys (flag names, or "routes"/"webhooks" for the file's lists) and a
// prepare method on *service. prepare reads next, checks it, and returns
// an apply function that puts it in force without failing (typically one
// atomic swap in the component, such as api.Handler.SetTokens), with the
// changes to log (never a secret: counts, names, fingerprints), as
// prepareDKIM does for the DKIM keys (reload_dkim.go).
type reloader struct {
	name    string
	keys    []string
	prepare func(d *service, cur, next *serveConfig) (apply func(), changes []string, err error)
}

// reloaders are the parts of the configuration SIGHUP changes in place.
var reloaders = []reloader{
	{"api tokens", []string{"api-token", "api-token-file"}, (*service).prepareTokens},
	{"smtp users", []string{"smtp-user", "smtp-user-file", "smtp-require-auth"}, (*service).prepareUsers},
	{"routes", []string{"relay", "relay-file", "route", "routes", "dns", "mx-port",
		"timeout-connect", "timeout-command", "timeout-data-end"}, (*service).prepareRouting},
	{"webhooks", []string{"webhooks"}, (*service).prepareWebhooks},
	{"certificates", []string{"tls-cert", "tls-key", "http-tls-cert", "http-tls-key"}, (*service).prepareCertificates},
	{"log level", []string{"log-level"}, (*service).prepareLogLevel},
	{"dkim keys", []string{"dkim"}, (*service).prepareDKIM},
}

// reloadableFlag reports whether a reload changes flag name in place.
func reloadableFlag(name string) bool {
	for _, r := range reloaders {
		if slices.Contains(r.keys, name) {
			return true
		}
	}
	return false
}

// reloads runs a reload for every SIGHUP until stop is closed.
func (d *service) reloads(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-d.hup:
			d.reload()
		}
	}
}

// reload reads the configuration again and puts it in force, or refuses
// it whole.
func (d *service) reload() {
	d.log.Info("SIGHUP: reloading the configuration", "config", d.cfg.configFile)
	next, restart, err := d.loadNext()
	if err != nil {
		d.log.Error("reload refused; the configuration in force stays", "err", err)
		return
	}
	var applies []func()
	var changes []string
	for _, r := range reloaders {
		apply, ch, err := r.prepare(d, d.current, next)
		if err != nil {
			d.log.Error("reload refused; the configuration in force stays", "part", r.name, "err", err)
			return
		}
		if apply != nil {
			applies = append(applies, apply)
		}
		for _, c := range ch {
			changes = append(changes, r.name+": "+c)
		}
	}
	for _, c := range changes {
		d.log.Info("reload: " + c)
	}
	for _, apply := range applies {
		apply()
	}
	d.current = next
	if len(restart) > 0 {
		d.log.Warn("reload: these settings changed but take effect only at the next start; their values in force stay",
			"settings", strings.Join(restart, ", "))
	}
	d.log.Info("configuration reloaded", "changes", len(changes))
}

// loadNext reads and checks the configuration as start-up does, then
// puts back the value in force of every setting a reload cannot change,
// naming those that differed.
func (d *service) loadNext() (*serveConfig, []string, error) {
	next, err := parseServeConfig(d.args)
	if err != nil {
		return nil, nil, err
	}
	if err := next.prepare(); err != nil {
		return nil, nil, err
	}
	var restart []string
	next.flags.VisitAll(func(f *flag.Flag) {
		if reloadableFlag(f.Name) {
			return
		}
		in := d.current.flags.Lookup(f.Name)
		if in.Value.String() == f.Value.String() {
			return
		}
		restart = append(restart, "--"+f.Name)
		// Every flag's Value points at its field of the config: copying
		// what it points at puts the value in force back.
		reflect.ValueOf(f.Value).Elem().Set(reflect.ValueOf(in.Value).Elem())
	})
	if err := checkAccess(next); err != nil {
		return nil, nil, err
	}
	return next, restart, nil
}

// prepareTokens reloads the API tokens of the API, the dashboard and
// /metrics. loadNext has checked them (checkAccess).
func (d *service) prepareTokens(cur, next *serveConfig) (func(), []string, error) {
	added, removed := diffSets(cur.apiTokens, next.apiTokens)
	if added == 0 && removed == 0 {
		return nil, nil, nil
	}
	change := fmt.Sprintf("%d added, %d removed, %d in force", added, removed, len(next.apiTokens))
	return func() {
		// Neither fails for tokens checkAccess passed (none is empty).
		d.api.SetTokens(next.apiTokens)
		web.SetTokens(d.dash, next.apiTokens)
		d.open.Store(len(next.apiTokens) == 0)
		if len(next.apiTokens) == 0 {
			d.log.Warn("the HTTP API has no authentication now (loopback only); set --api-token to require one")
		}
	}, []string{change}, nil
}

// diffSets counts the values of next not in cur and those of cur not in
// next, without showing any.
func diffSets(cur, next []string) (added, removed int) {
	for _, v := range next {
		if !slices.Contains(cur, v) {
			added++
		}
	}
	for _, v := range cur {
		if !slices.Contains(next, v) {
			removed++
		}
	}
	return added, removed
}

// prepareUsers reloads the SMTP users, their sender patterns and whether
// loopback may submit without them. loadNext has checked them.
func (d *service) prepareUsers(cur, next *serveConfig) (func(), []string, error) {
	if d.smtpServer == nil {
		return nil, nil, nil
	}
	users, senders, err := smtpUsers(next.smtpUsers)
	if err != nil {
		return nil, nil, err
	}
	oldUsers, oldSenders, _ := smtpUsers(cur.smtpUsers)
	var added, removed, password, bound []string
	for u, p := range users {
		old, ok := oldUsers[u]
		switch {
		case !ok:
			added = append(added, u)
		case old != p:
			password = append(password, u)
		}
		if ok && !slices.Equal(senders[u], oldSenders[u]) {
			bound = append(bound, u)
		}
	}
	for u := range oldUsers {
		if _, ok := users[u]; !ok {
			removed = append(removed, u)
		}
	}
	var changes []string
	for _, c := range []struct {
		what  string
		names []string
	}{{"added", added}, {"removed", removed}, {"password changed for", password}, {"allowed senders changed for", bound}} {
		if len(c.names) > 0 {
			slices.Sort(c.names)
			changes = append(changes, c.what+" "+strings.Join(logSafeNames(c.names), ", "))
		}
	}
	open := len(users) == 0 && !next.hard.smtpRequireAuth
	if open != d.smtpServer.OpenOnLoopback() {
		changes = append(changes, fmt.Sprintf("loopback may submit without authentication: %v", open))
	}
	if len(changes) == 0 {
		return nil, nil, nil
	}
	return func() {
		if err := d.smtpServer.SetUsers(users, senders, open); err != nil {
			d.log.Error("reload: smtp users not changed", "err", err)
		}
	}, changes, nil
}

// logSafeName shows a user name in the log: printable, bounded.
func logSafeName(u string) string {
	u = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, u)
	if len(u) > 64 {
		u = u[:64] + "…"
	}
	return u
}

func logSafeNames(us []string) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = logSafeName(u)
	}
	return out
}
