package main

import (
	"flag"
	"strings"
)

// This file is the data behind every --help: the groups flags are shown
// under, which group each flag of each command belongs to, and the
// commands' summaries.
//
// A new flag needs one line here: its name and its group's key, in the
// map of its command. TestEveryFlagHasAGroup fails, naming the flag, until
// it has one.

// helpGroup is one heading of a command's flags.
type helpGroup struct{ key, title string }

// helpGroups are every heading, in the order help prints them.
var helpGroups = []helpGroup{
	{"listeners", "Listeners"},
	{"access", "Access"},
	{"delivery", "Delivery and routing"},
	{"deliverability", "Deliverability"},
	{"queue", "Queue and retries"},
	{"tls", "TLS"},
	{"hardening", "Hardening"},
	{"logging", "Logging and configuration"},
	{"message", "Message"},
	{"body", "Body"},
	{"sending", "Sending"},
	{"filter", "Filters"},
	{"key", "Key"},
	{"entry", "Entry"},
	{"output", "Output"},
	{"daemon", "Daemon"},
}

// flagGroups maps a command's path to its flags' groups. A subcommand
// ("queue list") falls back to its parent's map ("queue") for the flags
// they share.
var flagGroups = map[string]map[string]string{
	"serve": {
		"http": "listeners", "smtp": "listeners", "hostname": "listeners",
		"max-message-size": "listeners", "templates": "listeners", "smtp-proxy-protocol": "listeners",

		"api-token": "access", "api-token-file": "access", "smtp-user": "access",
		"smtp-user-file": "access", "smtp-require-auth": "access",

		"relay": "delivery", "relay-file": "delivery", "route": "delivery", "dns": "delivery",
		"mx-port": "delivery", "timeout-connect": "delivery", "timeout-command": "delivery",
		"timeout-data-end": "delivery", "max-connections": "delivery",
		"max-connections-per-destination": "delivery", "workers": "delivery", "release-relay": "delivery",

		"db": "queue", "retry-initial": "queue", "retry-max": "queue", "max-lifetime": "queue",
		"retention": "queue", "lease": "queue", "transcripts": "queue", "search": "queue",

		"tls-cert": "tls", "tls-key": "tls", "http-tls-cert": "tls", "http-tls-key": "tls",

		"smtp-max-connections": "hardening", "smtp-max-connections-per-ip": "hardening",
		"http-max-connections": "hardening", "min-free-space": "hardening",

		"log-format": "logging", "log-level": "logging", "config": "logging",

		"dkim": "deliverability", "bounce-domain": "deliverability", "bounce-secret-file": "deliverability",
		"public-url": "deliverability", "unsubscribe-secret-file": "deliverability",
	},
	"send": {
		"from": "message", "to": "message", "cc": "message", "bcc": "message",
		"reply-to": "message", "subject": "message", "header": "message",
		"text": "body", "text-file": "body", "html": "body", "html-file": "body",
		"attach": "body", "inline": "body",
		"print": "sending", "direct": "sending", "relay": "sending", "v": "sending",
		"idempotency-key": "sending", "send-at": "sending",
		"url": "daemon", "token": "daemon",
	},
	"queue": {
		"url": "daemon", "token": "daemon", "json": "output", "v": "output",
	},
	"queue list": {
		"status": "filter", "limit": "filter", "cursor": "filter", "recipient": "filter",
		"from": "filter", "subject": "filter",
	},
	"queue show":          {"raw": "output"},
	"queue retry":         {"include-failed": "filter", "all-deferred": "filter", "status": "filter", "route": "filter", "to": "filter", "before": "filter"},
	"queue cancel":        {"all": "filter", "status": "filter", "route": "filter", "to": "filter", "before": "filter"},
	"queue wait":          {"to": "filter", "subject": "filter", "from": "filter", "status": "filter", "timeout": "daemon"},
	"queue delete":        {"all": "filter", "status": "filter", "before": "filter"},
	"suppressions":        {"url": "daemon", "token": "daemon", "json": "output"},
	"suppressions list":   {"address": "filter", "limit": "filter", "cursor": "filter"},
	"suppressions add":    {"reason": "entry", "scope": "entry", "expires": "entry"},
	"suppressions remove": {"scope": "entry"},
	"dkim keygen": {
		"domain": "key", "selector": "key", "type": "key", "bits": "key",
		"out": "output", "force": "output",
	},
	"healthcheck": {"timeout": "daemon"},
}

// commandSummaries say what a command does, under its synopsis.
var commandSummaries = map[string]string{
	"serve": "Run the daemon: the HTTP API, the dashboard and /metrics, the SMTP " +
		"submission listener, and delivery with retries. With no flags it keeps its queue " +
		"in ./outbox-data/, listens on loopback only and captures mail instead of sending it.",
	"send": "Compose a message; print it (--print), send it now through a relay " +
		"(--direct), or submit it to the daemon and print its id.",
	"queue":        "Inspect and steer the daemon's queue through its API.",
	"queue list":   "List messages, newest first.",
	"queue show":   "Show a message with every recipient's status and its attempts.",
	"queue retry":  "Make a deferred message due now.",
	"queue cancel": "Stop delivering a message, or every waiting one that matches; their open recipients fail.",
	"queue wait": "Wait until a message that matches exists and print its id (--json: its content): " +
		"what a test does after its application sent mail. Exit 1 when none came in time.",
	"queue delete":        "Delete a final message, or every final one that matches (emptying a capture inbox).",
	"suppressions":        "Inspect and change the suppression list through the daemon's API.",
	"suppressions list":   "List the entries, by address.",
	"suppressions add":    "Suppress an address: mail to it is not sent (for one sender domain with --scope).",
	"suppressions remove": "Remove an address's entry.",
	"dkim":                "Manage DKIM signing keys.",
	"dkim keygen":         "Generate a DKIM private key and print the DNS TXT record that publishes it.",
	"version":             "Print the version, the commit and the Go version outbox was built with.",
	"healthcheck": "Ask a running daemon whether it is ready (GET /readyz): exit 0 if it is, " +
		"1 otherwise. Without a URL it finds the daemon from the same OUTBOX_HTTP and " +
		"OUTBOX_HTTP_TLS_CERT as 'outbox serve'. For container health checks.",
}

// flagGroup is the group of flag name of command cmd, or "".
func flagGroup(cmd, name string) string {
	for c := cmd; c != ""; {
		if g, ok := flagGroups[c][name]; ok {
			return g
		}
		i := strings.LastIndexByte(c, ' ')
		if i < 0 {
			break
		}
		c = c[:i]
	}
	return ""
}

// clientEnv are the environment twins of the flags of the daemon's
// clients (send, queue).
var clientEnv = map[string]string{"url": "OUTBOX_URL", "token": "OUTBOX_TOKEN"}

// envTwin is the environment variable that stands in for a flag of cmd.
func envTwin(cmd string, f *flag.Flag) string {
	if cmd == "serve" {
		if _, isList := f.Value.(*listFlag); isList {
			return envName(f.Name) + " (comma-separated)"
		}
		return envName(f.Name)
	}
	return clientEnv[f.Name]
}
