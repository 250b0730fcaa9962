package main

import (
	"flag"
	"net/netip"
	"strings"
)

// hardening is the part of 'outbox serve's configuration that holds
// against hostile clients and careless set-ups: connection limits, the
// PROXY protocol, TLS for HTTP, secrets from files, the disk floor.
type hardening struct {
	smtpMaxConns, smtpMaxConnsPerIP, httpMaxConns int
	smtpProxyProtocol                             listFlag
	smtpRequireAuth                               bool
	httpTLSCert, httpTLSKey                       string
	apiTokenFile, smtpUserFile, relayFile         string
	minFreeSpace                                  sizeFlag
}

// register adds the hardening flags to fs.
func (h *hardening) register(fs *flag.FlagSet) {
	fs.IntVar(&h.smtpMaxConns, "smtp-max-connections", 0,
		"most SMTP connections at once (default: 1000, lowered to fit the open-file limit)")
	fs.IntVar(&h.smtpMaxConnsPerIP, "smtp-max-connections-per-ip", 50, "most SMTP connections from one client address (IPv6: one /64)")
	fs.IntVar(&h.httpMaxConns, "http-max-connections", 0,
		"most HTTP connections at once (default: 1000, lowered to fit the open-file limit); /healthz is still answered when full")
	fs.Var(&h.smtpProxyProtocol, "smtp-proxy-protocol",
		"`ADDR` or network of a proxy whose SMTP connections start with a PROXY v1/v2 header (repeatable)")
	fs.BoolVar(&h.smtpRequireAuth, "smtp-require-auth", false,
		"require SMTP AUTH even from loopback (use it behind a local proxy or tunnel)")
	fs.StringVar(&h.httpTLSCert, "http-tls-cert", "", "certificate `FILE`: serve the API and dashboard over HTTPS")
	fs.StringVar(&h.httpTLSKey, "http-tls-key", "", "key `FILE` for --http-tls-cert")
	fs.StringVar(&h.apiTokenFile, "api-token-file", "", "`FILE` of API tokens, one per line (not readable by others)")
	fs.StringVar(&h.smtpUserFile, "smtp-user-file", "", "`FILE` of NAME:PASSWORD[:ALLOWED-FROM] lines (not readable by others)")
	fs.StringVar(&h.relayFile, "relay-file", "", "`FILE` holding the relay URL with its password (not readable by others)")
	h.minFreeSpace = 100 << 20
	fs.Var(&h.minFreeSpace, "min-free-space", "SQLite: not ready (/readyz 503) below this much free disk space, a `SIZE`")
}

// proxies parses --smtp-proxy-protocol.
func (h *hardening) proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range h.smtpProxyProtocol {
		for _, one := range strings.Split(s, ",") {
			one = strings.TrimSpace(one)
			if one == "" {
				continue
			}
			if p, err := netip.ParsePrefix(one); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(one)
			if err != nil {
				return nil, usagef("--smtp-proxy-protocol: %q is not an address or a network (10.0.0.0/8)", one)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out, nil
}

// check validates what can be checked before anything is opened.
func (h *hardening) check() error {
	for name, v := range map[string]int{"smtp-max-connections": h.smtpMaxConns, "http-max-connections": h.httpMaxConns} {
		if v < 0 {
			return usagef("--%s: %d is negative", name, v)
		}
	}
	if h.smtpMaxConnsPerIP < 1 {
		return usagef("--smtp-max-connections-per-ip: %d must be at least 1", h.smtpMaxConnsPerIP)
	}
	if (h.httpTLSCert == "") != (h.httpTLSKey == "") {
		return usagef("--http-tls-cert and --http-tls-key go together")
	}
	if _, err := h.proxies(); err != nil {
		return err
	}
	return nil
}
