package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// serveConfig is everything 'outbox serve' is configured with. Each field
// is a flag with an OUTBOX_* environment twin and a key in the optional
// JSON config file; precedence is flag, then environment, then file.
type serveConfig struct {
	db, httpAddr, smtpAddr, relay string
	apiTokens, smtpUsers          listFlag // environment twins are comma-separated
	retryInitial, retryMax        time.Duration
	maxLifetime, retention, lease time.Duration
	maxMessageSize                sizeFlag
	workers                       int
	hostname, templates           string
	tlsCert, tlsKey               string
	logFormat, logLevel           string
	configFile                    string
	transcripts                   string
	search                        string
	webhooks                      []webhookConfig
	routing                       routingFlags
	hard                          hardening           // hardening.go
	deliver                       deliverabilityFlags // deliverability.go
	release                       releaseFlags        // release.go
	setFlags                      map[string]bool     // flags given, by flag, environment or file
	flags                         *flag.FlagSet       // whose Values point at the fields above
}

// routingFlags are the routing and timeout settings of 'outbox serve'
// (see serveroutes.go): --route, --dns, --mx-port, --timeout-*,
// --max-connections, --max-connections-per-destination, and the config
// file's "routes".
type routingFlags struct {
	routes                 listFlag
	fileRoutes             []routeConfig
	dns                    string
	mxPort                 int
	timeoutConnect         time.Duration
	timeoutCommand         time.Duration
	timeoutDataEnd         time.Duration
	maxConnections         int
	destinationConnections int
}

// routeConfig is one route from the config file's "routes".
type routeConfig struct {
	Domain         string `json:"domain"`
	Target         string `json:"target"`
	MaxConnections int    `json:"max_connections"`
	Rate           string `json:"rate"`
}

// webhookConfig is one webhook endpoint from the config file.
type webhookConfig struct {
	URL    string   `json:"url"`
	Secret string   `json:"secret"`
	Events []string `json:"events"`
}

// sizeFlag is a byte count with an optional unit: 25MiB, 10MB, 1048576.
type sizeFlag int64

// String shows the size in the largest binary unit that divides it, so
// that help shows the default as it would be written: 25MiB.
func (s *sizeFlag) String() string {
	n := int64(*s)
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

var sizeUnits = map[string]int64{"": 1, "B": 1, "KB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

func parseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	i := strings.IndexFunc(v, func(r rune) bool { return !unicode.IsDigit(r) })
	if i < 0 {
		i = len(v)
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	unit, ok := sizeUnits[strings.ToUpper(strings.TrimSpace(v[i:]))]
	if err != nil || !ok || n <= 0 || n > (1<<40)/unit {
		return 0, fmt.Errorf("%q is not a size (e.g. 25MiB, 10MB, 1048576)", v)
	}
	return n * unit, nil
}

func serveFlags(c *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.db, "db", "sqlite:outbox-data/outbox.db", "the store: sqlite:PATH or postgres://… (a `DSN`)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8025", "`ADDR` of the HTTP API, the dashboard and /metrics")
	fs.StringVar(&c.smtpAddr, "smtp", "127.0.0.1:2525", "`ADDR` of the SMTP submission listener (\"off\" disables it)")
	fs.StringVar(&c.relay, "relay", "", "default route: a relay `URL` smtp://user:pass@host:port (smtps:// for implicit TLS), or mx to deliver direct to MX hosts; none: capture mail locally")
	fs.Var(&c.apiTokens, "api-token", "bearer `TOKEN` for the API, the dashboard and /metrics (repeatable)")
	fs.Var(&c.smtpUsers, "smtp-user", "`NAME:PASSWORD[:ALLOWED-FROM]` allowed to submit over SMTP (repeatable)")
	durationVar(fs, &c.retryInitial, "retry-initial", 5*time.Minute, "first retry delay after a temporary failure")
	durationVar(fs, &c.retryMax, "retry-max", 67*time.Minute, "longest delay between retries")
	durationVar(fs, &c.maxLifetime, "max-lifetime", 120*time.Hour, "give up on a message after this long")
	durationVar(fs, &c.retention, "retention", 7*24*time.Hour, "delete finished messages after this long (0 keeps them)")
	c.maxMessageSize = 25 << 20
	fs.Var(&c.maxMessageSize, "max-message-size", "largest accepted message, a `SIZE` such as 25MiB")
	fs.IntVar(&c.workers, "workers", 0, "deprecated: the former name of --max-connections")
	routingFlagSet(fs, &c.routing)
	durationVar(fs, &c.lease, "lease", 2*time.Minute, "how long a claim on a message lasts unrenewed: a crashed node's messages are retried after this")
	fs.StringVar(&c.hostname, "hostname", "", "`NAME` in SMTP greetings and Received headers (default: the host name)")
	fs.StringVar(&c.templates, "templates", "", "`DIR` of message templates (NAME.subject.tmpl, NAME.txt.tmpl, NAME.html.tmpl)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "certificate `FILE` for SMTP STARTTLS (default: self-signed, kept in the data directory)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "key `FILE` for --tls-cert")
	fs.StringVar(&c.logFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&c.search, "search", "full", "what the dashboard's search index holds, a `MODE`: full (subject, addresses, names, text body), headers (all but the text body, cheaper) or off")
	fs.StringVar(&c.transcripts, "transcripts", "failures", "which attempts keep their full SMTP transcript, a `POLICY`: all, failures or off (every attempt keeps its summary)")
	fs.StringVar(&c.configFile, "config", "", "JSON config `FILE`: keys as the flags with _ for -, plus routes and webhooks; // comments allowed")
	c.hard.register(fs)
	c.deliver.register(fs)
	c.release.register(fs)
	return fs
}

// serveNotes end 'outbox serve --help'.
const serveNotes = `Precedence: a flag on the command line wins over its OUTBOX_* environment
variable, which wins over the --config file, which wins over the default.
Repeatable flags given on the command line replace the file's list; --route
and the file's routes add up.

SIGHUP reloads the --config file and the *-file secrets: the settings marked
"reloaded on SIGHUP" change without a restart, and without dropping
connections or deliveries under way; flags and environment variables keep
their values. A file that does not load, or a setting that does not check,
is refused with a log line and the configuration in force stays. Other
settings changed in the file are logged and take effect at the next start.`

// parseServeConfig reads flags, then fills what they left unset from the
// environment and then from the config file.
func parseServeConfig(args []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs := serveFlags(c)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			h := helpFor("serve", fs)
			h.notes = serveNotes
			return nil, h
		}
		return nil, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := applyEnv(fs, set); err != nil {
		return nil, err
	}
	if c.configFile != "" {
		if err := applyFile(fs, set, c); err != nil {
			return nil, err
		}
	}
	c.setFlags, c.flags = set, fs
	return c, nil
}

// envName is a flag's environment twin: --max-lifetime → OUTBOX_MAX_LIFETIME.
func envName(flagName string) string {
	return "OUTBOX_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func applyEnv(fs *flag.FlagSet, set map[string]bool) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || set[f.Name] || err != nil {
			return
		}
		set[f.Name] = true
		values := []string{v}
		if _, isList := f.Value.(*listFlag); isList {
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if e := f.Value.Set(strings.TrimSpace(one)); e != nil {
				err = usagef("%s: %v", envName(f.Name), e)
				return
			}
		}
	})
	return err
}

// applyFile reads the JSON config file: every key is a flag name with _
// for -, holding a string, a number, a boolean or (for repeatable flags) a
// list; "routes" and "webhooks" hold the routes and webhook endpoints.
// Lines may end in // comments (dist/outbox.json documents every key so).
func applyFile(fs *flag.FlagSet, set map[string]bool, c *serveConfig) error {
	data, err := os.ReadFile(c.configFile)
	if err != nil {
		return usagef("--config: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(stripComments(data), &raw); err != nil {
		return usagef("--config %s: %v", c.configFile, err)
	}
	for key, val := range raw {
		if key == "webhooks" {
			if err := json.Unmarshal(val, &c.webhooks); err != nil {
				return usagef("--config %s: webhooks: %v", c.configFile, err)
			}
			continue
		}
		if key == "routes" {
			dec := json.NewDecoder(bytes.NewReader(val))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c.routing.fileRoutes); err != nil {
				return usagef("--config %s: routes: %v (want a list of {\"domain\", \"target\", \"max_connections\", \"rate\"})", c.configFile, err)
			}
			continue
		}
		name := strings.ReplaceAll(key, "_", "-")
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return usagef("--config %s: unknown key %q", c.configFile, key)
		}
		if set[name] {
			continue
		}
		if err := setFromJSON(f, val); err != nil {
			return usagef("--config %s: %s: %v", c.configFile, key, err)
		}
		set[name] = true
	}
	return nil
}

func setFromJSON(f *flag.Flag, val json.RawMessage) error {
	var list []string
	if err := json.Unmarshal(val, &list); err == nil {
		if _, isList := f.Value.(*listFlag); !isList {
			return errors.New("takes one value, not a list")
		}
		for _, v := range list {
			if err := f.Value.Set(v); err != nil {
				return err
			}
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(val, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(val, &n); err != nil {
			var b bool
			if err := json.Unmarshal(val, &b); err != nil {
				return errors.New("must be a string, number, boolean or list of strings")
			}
			s = strconv.FormatBool(b)
		} else {
			s = n.String()
		}
	}
	return f.Value.Set(s)
}
