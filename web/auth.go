package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/outbox-mail/outbox/internal/throttle"
)

// cookieName is the session cookie.
const cookieName = "outbox_session"

// authenticator issues and checks session cookies and CSRF tokens.
//
// A cookie holds a random session id and its expiry, signed with
// HMAC-SHA256 over the id, the expiry and the digest of the token that
// logged in: the token itself never leaves the login request, and removing
// a token from the configuration ends its sessions. The CSRF token is an
// HMAC of the session id under a separate label, so it needs no storage.
type authenticator struct {
	key      []byte
	tokens   atomic.Pointer[[][sha256.Size]byte] // swapped by SetTokens
	ttl      time.Duration
	throttle *throttle.Throttle // login guessing; session cookies are signed and need none
}

// sessionKey keys the request's session in its context.
type sessionKey struct{}

// session is a verified cookie.
type session struct {
	id   []byte
	csrf string
}

func newAuthenticator(tokens []string, key []byte, ttl time.Duration) (*authenticator, error) {
	a := &authenticator{key: key, ttl: ttl}
	if len(a.key) == 0 {
		a.key = make([]byte, 32)
		rand.Read(a.key)
	}
	if err := a.setTokens(tokens); err != nil {
		return nil, err
	}
	return a, nil
}

// open reports whether no login is needed (no tokens configured).
func (a *authenticator) open() bool { return len(*a.tokens.Load()) == 0 }

// checkToken compares a submitted token with every configured one in
// constant time; it returns the matching digest.
func (a *authenticator) checkToken(token string) ([sha256.Size]byte, bool) {
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	tokens := *a.tokens.Load()
	for i := range tokens {
		match |= subtle.ConstantTimeCompare(sum[:], tokens[i][:])
	}
	return sum, match == 1
}

func (a *authenticator) mac(label string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(label))
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// issue sets a new session cookie bound to the token digest (zero when no
// tokens are configured) and returns the session.
func (a *authenticator) issue(w http.ResponseWriter, r *http.Request, digest [sha256.Size]byte) *session {
	id := make([]byte, 16)
	rand.Read(id)
	exp := make([]byte, 8)
	binary.BigEndian.PutUint64(exp, uint64(time.Now().Add(a.ttl).Unix()))
	payload := append(append([]byte{}, id...), exp...)
	sig := a.mac("session", id, exp, digest[:])
	http.SetCookie(w, &http.Cookie{Name: cookieName,
		Value: base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(sig),
		Path:  "/", MaxAge: int(a.ttl / time.Second), HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode})
	return a.sessionFor(id)
}

func (a *authenticator) sessionFor(id []byte) *session {
	return &session{id: id, csrf: base64.RawURLEncoding.EncodeToString(a.mac("csrf", id))}
}

// verify returns the session of a valid, unexpired cookie, or nil.
func (a *authenticator) verify(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	p64, s64, ok := strings.Cut(c.Value, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if !ok || err1 != nil || err2 != nil || len(payload) != 24 {
		return nil
	}
	id, exp := payload[:16], payload[16:]
	if time.Now().Unix() > int64(binary.BigEndian.Uint64(exp)) {
		return nil
	}
	// Check against every digest the session could be bound to, without
	// stopping early, so timing says nothing about which one matched.
	digests := *a.tokens.Load()
	if len(digests) == 0 {
		digests = [][sha256.Size]byte{{}}
	}
	match := 0
	for i := range digests {
		match |= subtle.ConstantTimeCompare(sig, a.mac("session", id, exp, digests[i][:]))
	}
	if match != 1 {
		return nil
	}
	return a.sessionFor(id)
}

// sameOrigin refuses cross-site requests: Sec-Fetch-Site, when the browser
// sends it, must be same-origin, and Origin, when it names an origin, must
// be ours. Our Referrer-Policy (no-referrer) makes browsers send
// "Origin: null" even on our own forms, so "null" is only accepted from a
// browser that vouches for the request with Sec-Fetch-Site.
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	switch {
	case o == "":
		return true
	case o == "null":
		return site == "same-origin"
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}

// current returns the request's session; when no login is needed, a
// visitor without a cookie gets one, so CSRF tokens still work.
func (h *handler) current(w http.ResponseWriter, r *http.Request) *session {
	if s := h.auth.verify(r); s != nil {
		return s
	}
	if h.auth.open() && w != nil {
		return h.auth.issue(w, r, [sha256.Size]byte{})
	}
	return nil
}

// page wraps a page handler: visitors without a session go to the login.
func (h *handler) page(fn func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h.current(w, r)
		if s == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		// The layout's forms need the CSRF token even when the session was
		// issued by this very response and is not in the request's cookies.
		fn(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)), s)
	})
}

// fragment wraps what scripts and frames fetch: no session is a plain 401.
func (h *handler) fragment(fn func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h.auth.verify(r)
		if s == nil && h.auth.open() {
			s = h.current(w, r)
		}
		if s == nil {
			http.Error(w, "Log in first.", http.StatusUnauthorized)
			return
		}
		fn(w, r, s)
	})
}

// action wraps a state-changing POST: it needs a session, a same-origin
// request and the session's CSRF token, compared in constant time.
func (h *handler) action(fn func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h.auth.verify(r)
		if s == nil {
			http.Error(w, "Log in first.", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
			http.Error(w, "This form has expired or came from another site; reload the page and try again.", http.StatusForbidden)
			return
		}
		fn(w, r, s)
	})
}

// safeNext keeps a post-login redirect on this site: a local path only.
// Browsers drop tabs and other control characters from a Location and read
// a backslash as a slash, so "/\t/evil.example" would become
// "//evil.example": any such byte sends the user to the overview instead.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if h.auth.open() || h.auth.verify(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", &view{Title: "Log in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// loginData is the login form's state.
type loginData struct {
	Next  string
	Error string
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := safeNext(r.PostFormValue("next"))
	if !sameOrigin(r) {
		http.Error(w, "Cross-site login refused.", http.StatusForbidden)
		return
	}
	if h.auth.open() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	// Each guess waits its turn with the throttle; an address that keeps
	// guessing is refused for a while (the throttle logs one summary line
	// per address instead of one per failure).
	ip := clientIP(r)
	wait, err := h.auth.throttle.Admit(ip)
	var re *throttle.RefusedError
	if errors.As(err, &re) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(re.RetryAfter/time.Second))))
		h.render(w, r, http.StatusTooManyRequests, "login", &view{Title: "Log in",
			Data: loginData{Next: next, Error: fmt.Sprintf("Too many failed logins from your address; try again in %s.",
				re.RetryAfter.Round(time.Minute))}})
		return
	}
	if throttle.Sleep(r.Context(), wait) != nil {
		return
	}
	digest, ok := h.auth.checkToken(r.PostFormValue("token"))
	if !ok {
		h.auth.throttle.Failed(ip, "dashboard", "")
		h.log.Debug("web: failed dashboard login", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "login", &view{Title: "Log in",
			Data: loginData{Next: next, Error: "That token is not valid."}})
		return
	}
	h.auth.throttle.Succeeded(ip, "")
	h.auth.issue(w, r, digest)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// clientIP is the address of the request's peer.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
