package web

import "testing"

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/messages?status=failed": "/messages?status=failed",
		"/messages/abc":           "/messages/abc",
		"":                        "/",
		"https://evil.example/":   "/",
		"//evil.example":          "/",
		"/\t/evil.example":        "/",
		"/\x0b/evil.example":      "/",
		"/\\evil.example":         "/",
		"/\r\nSet-Cookie: x=y":    "/",
		"/%2F/evil.example":       "/", // decodes to //: refused, to be safe
		"/\x7f/evil.example":      "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
