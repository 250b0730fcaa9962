package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// keywordPassword matches a password given as keyword=value (libpq's
// keyword/value form, or a query parameter): password, sslpassword and
// any other key ending in "password", the value quoted or bare, up to a
// space or &.
var keywordPassword = regexp.MustCompile(`(?i)([a-z_]*password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)`)

// redactDSN shows a store DSN with every password hidden, whatever its
// form: a URL (user information and password= parameters), libpq's
// keyword/value form (password=… quoted or not), and the mistyped forms
// that parse as something else or not at all (postgres:pw@h,
// postgres//u:pw@h): in those, everything before the last @ of the
// authority is hidden. A SQLite DSN is a path and is shown as given.
func redactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return dsn
	}
	// A URL is redacted by its parts only when they are beyond doubt: an @
	// after the authority may be the end of a password holding / ? or #.
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Host != "" && u.Opaque == "" &&
		!strings.Contains(u.EscapedPath()+u.RawQuery+u.Fragment, "@") && !strings.Contains(u.Host, "@") {
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxx")
			}
		}
		out := u.String()
		// Query and fragment are redacted as text, so that a repeated,
		// oddly cased or percent-encoded key is caught as well.
		if i := strings.IndexAny(out, "?#"); i >= 0 {
			out = out[:i] + redactKeywords(out[i:])
		}
		return out
	}
	return redactLoose(dsn)
}

// redactLoose hides passwords in a DSN that is not a well-formed URL.
func redactLoose(dsn string) string {
	out := redactKeywords(dsn)
	// Credentials before an @: keep a leading scheme and its separators,
	// hide everything up to the last @ (one in a query hides more than
	// needed, which is the safe way to be wrong).
	at := strings.LastIndexByte(out, '@')
	if at < 0 {
		return out
	}
	start := 0
	for start < at && isSchemeChar(out[start]) {
		start++
	}
	for start < at && (out[start] == ':' || out[start] == '/') {
		start++
	}
	if strings.ContainsAny(out[:start], "=") {
		start = 0
	}
	return out[:start] + "***" + out[at:]
}

func isSchemeChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}

func redactKeywords(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range passwordValues(s) {
		b.WriteString(s[last:m[0]])
		b.WriteString("xxx")
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// nextParam matches the start of another query parameter.
var nextParam = regexp.MustCompile(`^&[A-Za-z_][A-Za-z0-9_]*=`)

// passwordValues returns the [start, end) of every password value in s. An
// unquoted value runs to a space or to an & that starts another key=value:
// an & followed by anything else is taken to be part of the password.
func passwordValues(s string) [][2]int {
	var out [][2]int
	for _, m := range keywordPassword.FindAllStringSubmatchIndex(s, -1) {
		start, end := m[4], m[5]
		if start == end || s[start] != '\'' {
			for end < len(s) && s[end] == '&' && !nextParam.MatchString(s[end:]) {
				end++
				for end < len(s) && s[end] != '&' && s[end] != ' ' && s[end] != '\t' {
					end++
				}
			}
		}
		out = append(out, [2]int{start, end})
	}
	return out
}

// dsnSecrets returns the strings of a DSN that must never be shown: its
// passwords as written and decoded, and for a loose form the whole
// credential part before the @, so that an error message quoting any of
// them (a driver's parse error) can be scrubbed.
func dsnSecrets(dsn string) []string {
	if strings.HasPrefix(dsn, "sqlite:") || dsn == "" {
		return nil
	}
	var out []string
	add := func(s string) {
		s = strings.Trim(s, "'")
		if len(s) >= 2 {
			out = append(out, s)
			if d, err := url.QueryUnescape(s); err == nil && d != s {
				out = append(out, d)
			}
		}
	}
	for _, m := range passwordValues(dsn) {
		add(dsn[m[0]:m[1]])
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			out = append(out, url.UserPassword("", p).String()[1:])
		}
	}
	if at := strings.LastIndexByte(dsn, '@'); at >= 0 {
		cred := dsn[:at]
		if i := strings.LastIndex(cred, "//"); i >= 0 {
			cred = cred[i+2:]
		}
		if _, pass, ok := strings.Cut(cred, ":"); ok {
			add(pass)
			// "postgres:user:pw@h": the password is the last part too.
			if i := strings.LastIndexByte(pass, ':'); i >= 0 {
				add(pass[i+1:])
			}
		} else {
			add(strings.TrimLeft(strings.TrimLeftFunc(cred, func(r rune) bool { return r < 0x80 && isSchemeChar(byte(r)) }), ":/"))
		}
	}
	return out
}

// scrub replaces every secret in msg.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxx")
		}
	}
	return msg
}

// scrubbedError is an error whose text has had secrets removed; it keeps
// the original for errors.Is and errors.As.
type scrubbedError struct {
	err error
	msg string
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubError removes the DSN's secrets from err's text.
func scrubError(err error, dsn string) error {
	if err == nil {
		return nil
	}
	secrets := dsnSecrets(dsn)
	msg := scrub(err.Error(), secrets)
	if msg == err.Error() {
		return err
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return &usageError{msg}
	}
	return &scrubbedError{err: err, msg: msg}
}

// readSecretFile reads a file of secrets, one per line; blank lines and
// lines starting with # are skipped, and surrounding white space is
// trimmed. A file that others may read is refused: the point of the file
// is that its secret is not in argv or the environment for all to see.
func readSecretFile(flagName, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--%s: %v", flagName, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, usagef("--%s: %v", flagName, err)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return nil, usagef("--%s %s: the file is readable by every user (mode %v); chmod o-rwx it", flagName, path, st.Mode().Perm())
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, usagef("--%s %s: %v", flagName, path, err)
	}
	if len(out) == 0 {
		return nil, usagef("--%s %s: the file holds no secret", flagName, path)
	}
	return out, nil
}

// loadSecretFiles adds what --api-token-file, --smtp-user-file and
// --relay-file name to the configuration.
func (c *serveConfig) loadSecretFiles() error {
	h := &c.hard
	if h.apiTokenFile != "" {
		toks, err := readSecretFile("api-token-file", h.apiTokenFile)
		if err != nil {
			return err
		}
		c.apiTokens = append(c.apiTokens, toks...)
	}
	if h.smtpUserFile != "" {
		users, err := readSecretFile("smtp-user-file", h.smtpUserFile)
		if err != nil {
			return err
		}
		c.smtpUsers = append(c.smtpUsers, users...)
	}
	if h.relayFile != "" {
		if c.relay != "" {
			return usagef("--relay and --relay-file both given; use one")
		}
		lines, err := readSecretFile("relay-file", h.relayFile)
		if err != nil {
			return err
		}
		if len(lines) != 1 {
			return usagef("--relay-file %s: want one relay URL, found %d lines", h.relayFile, len(lines))
		}
		c.relay = lines[0]
	}
	return nil
}

// parseSMTPUser splits NAME:PASSWORD or NAME:PASSWORD:ALLOWED-FROM. The
// part after the last colon is the sender pattern when it holds an @ (a
// pattern is an address, * as a wildcard); otherwise the whole rest is the
// password.
func parseSMTPUser(u string) (name, pass, from string, err error) {
	name, rest, ok := strings.Cut(u, ":")
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && strings.Contains(rest[i+1:], "@") {
		rest, from = rest[:i], rest[i+1:]
	}
	if !ok || name == "" || rest == "" {
		return "", "", "", fmt.Errorf("--smtp-user wants NAME:PASSWORD or NAME:PASSWORD:ALLOWED-FROM, got %q", redactUser(u))
	}
	return name, rest, from, nil
}

func redactUser(u string) string {
	if name, _, ok := strings.Cut(u, ":"); ok {
		return name + ":***"
	}
	return "***"
}
