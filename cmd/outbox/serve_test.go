package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLoopbackHostOnly(t *testing.T) {
	h := loopbackHostOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for host, want := range map[string]int{
		"127.0.0.1:8025": 200, "localhost:8025": 200, "[::1]:8025": 200, "127.0.0.2": 200, "LOCALHOST": 200,
		"rebind.evil.example:8025": http.StatusMisdirectedRequest, "10.0.0.1:8025": http.StatusMisdirectedRequest,
		"": http.StatusMisdirectedRequest,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, secret := range map[string]string{
		"postgres://outbox:hunter22@db:5432/mail":              "hunter22",
		"postgres://outbox@db/mail?password=hunter22&x=1":      "hunter22",
		"postgres://outbox:a%2Fb@db/mail":                      "a/b",
		"postgres://outbox:hunter22@db:notaport%zz/mail":       "hunter22",
		"postgresql://u:hunter22@db/mail?sslmode=disable":      "hunter22",
		"postgres://u@db/mail?sslmode=disable&password=s3cr3t": "s3cr3t",
	} {
		got := redactDSN(in)
		if strings.Contains(got, secret) || strings.Contains(got, "a%2Fb") {
			t.Errorf("redactDSN(%q) = %q still shows the password", in, got)
		}
	}
	if got := redactDSN("sqlite:outbox-data/outbox.db"); got != "sqlite:outbox-data/outbox.db" {
		t.Errorf("sqlite DSN changed: %q", got)
	}
	if got := redactDSN("postgres://outbox@db/mail?sslmode=disable"); got != "postgres://outbox@db/mail?sslmode=disable" {
		t.Errorf("DSN without a password changed: %q", got)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"25MiB": 25 << 20, "10MB": 10_000_000, "1048576": 1 << 20, "64 KiB": 64 << 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "25XB", "0", "99999999999999TB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) succeeded", bad)
		}
	}
}
