package web

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/queue"
)

// client is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login logs c in and returns the page's CSRF token.
func login(t *testing.T, s *stack, c *http.Client) string {
	t.Helper()
	resp, body := post(t, c, s.srv.URL+"/login", url.Values{"token": {testToken}, "next": {"/messages"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/messages" {
		t.Fatalf("login: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return csrfOf(t, c, s.srv.URL+"/messages")
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	_, body := get(t, c, u)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on %s:\n%s", u, body)
	}
	return m[1]
}

func TestLoginRequired(t *testing.T) {
	s := newStack(t, []string{testToken}, false)
	c := client(t)
	resp, _ := get(t, c, s.srv.URL+"/messages?status=failed")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fmessages%3Fstatus%3Dfailed" {
		t.Fatalf("unauthenticated page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/live/overview", "/messages/x/html", "/messages/x/attachments/0"} {
		if resp, _ := get(t, c, s.srv.URL+p); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d, want 401", p, resp.StatusCode)
		}
	}
	resp, body := post(t, c, s.srv.URL+"/login", url.Values{"token": {"wrong-token-wrong-token"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
		t.Fatalf("bad token: %d", resp.StatusCode)
	}
	// A login that names another site as the place to go stays here.
	resp, _ = post(t, c, s.srv.URL+"/login", url.Values{"token": {testToken}, "next": {"//evil.example/"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/" {
		t.Fatalf("session cookie: %+v", ck)
	}
	if strings.Contains(ck[0].Value, testToken) || ck[0].Secure {
		t.Fatalf("cookie holds the token or is Secure over plain HTTP: %+v", ck[0])
	}
	if resp, body := get(t, c, s.srv.URL+"/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Messages by status") {
		t.Fatalf("overview after login: %d", resp.StatusCode)
	}
	if strings.Contains(body, "needs no login") {
		t.Fatal("the no-login notice shows although tokens are set")
	}
}

func TestTamperedCookieRefused(t *testing.T) {
	s := newStack(t, []string{testToken}, false)
	c := client(t)
	login(t, s, c)
	u, _ := url.Parse(s.srv.URL)
	ck := c.Jar.Cookies(u)[0]
	v := []byte(ck.Value)
	v[3] ^= 1
	for _, val := range []string{string(v), ck.Value + "x", "", "abc.def"} {
		req, _ := http.NewRequest("GET", s.srv.URL+"/live/overview", nil)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: val})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("cookie %q: %d, want 401", val, resp.StatusCode)
		}
	}
	// Another dashboard (another key) does not accept this one's cookie.
	other := newStack(t, []string{testToken}, false)
	req, _ := http.NewRequest("GET", other.srv.URL+"/live/overview", nil)
	req.AddCookie(ck)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("foreign cookie: %d", resp.StatusCode)
	}
}

func TestCSRF(t *testing.T) {
	s := newStack(t, []string{testToken}, false)
	id := s.send(t, `{"from":"a@example.com","to":["slow@example.org"],"subject":"csrf","text":"x"}`)
	s.waitStatus(t, id, queue.StatusDeferred)
	c := client(t)
	csrf := login(t, s, c)
	u := s.srv.URL + "/messages/" + id + "/retry"
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {csrf + "x"}}, nil},
		{"cross-site origin", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "http://evil.example"}},
		{"cross-site fetch", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"null origin, no fetch metadata", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "null"}},
		{"same-site subdomain", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "null"}},
	}
	for _, tc := range cases {
		if resp, _ := post(t, c, u, tc.form, tc.hdr); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, resp.StatusCode)
		}
	}
	if m, _ := s.store.Get(t.Context(), id); m.Status != queue.StatusDeferred {
		t.Fatalf("a refused POST changed the message: %s", m.Status)
	}
	resp, _ := post(t, c, u, url.Values{"csrf": {csrf}}, map[string]string{"Origin": s.srv.URL, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/messages/"+id {
		t.Fatalf("retry with token: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Cancel refuses a message while its attempt runs: wait for the retry
	// to end (the sink defers slow@ again).
	for deadline := time.Now().Add(10 * time.Second); ; {
		m, err := s.store.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Attempts >= 2 && m.Status == queue.StatusDeferred {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retry did not end: %s after %d attempts", m.Status, m.Attempts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := post(t, c, s.srv.URL+"/messages/"+id+"/cancel", url.Values{"csrf": {csrf}}, map[string]string{"X-Outbox-Fetch": "1"})
	if resp.StatusCode != http.StatusOK || body != "Cancelled." {
		t.Fatalf("cancel: %d %q", resp.StatusCode, body)
	}
	resp, body = post(t, c, s.srv.URL+"/messages/"+id+"/cancel", url.Values{"csrf": {csrf}}, map[string]string{"X-Outbox-Fetch": "1"})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "final") {
		t.Fatalf("second cancel: %d %q", resp.StatusCode, body)
	}
	// Logging out is a CSRF-protected POST too.
	if resp, _ := post(t, c, s.srv.URL+"/logout", url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without token: %d", resp.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := newStack(t, nil, false)
	id := s.sendRaw(t, maliciousRaw)
	s.waitStatus(t, id, queue.StatusDelivered)
	c := client(t)
	for _, p := range []string{"/", "/messages", "/messages/" + id, "/inbox", "/live/overview", "/nope", "/login"} {
		resp, _ := get(t, c, s.srv.URL+p)
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" ||
			h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: weak headers %v", p, h)
		}
	}
	resp, body := get(t, c, s.srv.URL+"/messages/"+id+"/html")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != http.StatusOK || !strings.Contains(csp, "default-src 'none'") ||
		!strings.Contains(csp, "sandbox") || strings.Contains(csp, "http:") || !strings.Contains(body, "Hello from the HTML part") {
		t.Fatalf("html part: %d %q", resp.StatusCode, csp)
	}
	resp, _ = get(t, c, s.srv.URL+"/messages/"+id+"/html?remote=1")
	own := strings.TrimPrefix(s.srv.URL, "http://") + "/messages/" + id + "/cid/"
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src data: "+own+" https: http:;") || !strings.Contains(csp, "sandbox") {
		t.Fatalf("remote images allowed: %q", csp)
	}
}

func TestMaliciousMessageEscaped(t *testing.T) {
	s := newStack(t, nil, true)
	id := s.sendRaw(t, maliciousRaw)
	s.waitStatus(t, id, queue.StatusDelivered)
	c := client(t)
	for _, p := range []string{"/messages", "/messages/" + id, "/inbox", "/live/messages/" + id, "/"} {
		resp, body := get(t, c, s.srv.URL+p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
		if strings.Contains(body, "<img src=/pwned-img") || strings.Contains(body, "<script>alert") {
			t.Errorf("%s: message markup is not escaped", p)
		}
	}
	_, body := get(t, c, s.srv.URL+"/messages/"+id)
	for tab, want := range map[string]string{"": "&lt;img src=/pwned-img onerror=&#34;alert(1)&#34;&gt;",
		"html": `<iframe sandbox title=`, "text": "Plain &lt;script&gt;alert(2)&lt;/script&gt; text.", "attachments": "passwd.html",
		"source": "&lt;script&gt;alert(3);window.top.__pwned=1;"} {
		_, body := get(t, c, s.srv.URL+"/messages/"+id+"?tab="+tab)
		if !strings.Contains(body, want) {
			t.Errorf("detail tab %q lacks %q", tab, want)
		}
		if strings.Contains(body, "<script>alert") {
			t.Errorf("detail tab %q: message markup is not escaped", tab)
		}
	}
	if regexp.MustCompile(`<iframe sandbox="?allow`).MatchString(body) {
		t.Error("the iframe's sandbox allows something")
	}
	_, inbox := get(t, c, s.srv.URL+"/inbox")
	if !strings.Contains(inbox, "/messages/"+id) {
		t.Error("captured message missing from the inbox")
	}
	resp, att := get(t, c, s.srv.URL+"/messages/"+id+"/attachments/0")
	cd := resp.Header.Get("Content-Disposition")
	if resp.StatusCode != http.StatusOK || cd != `attachment; filename=passwd.html` ||
		resp.Header.Get("Content-Type") != "application/octet-stream" || !strings.Contains(att, "alert(4)") {
		t.Fatalf("attachment: %d %q %q", resp.StatusCode, cd, resp.Header.Get("Content-Type"))
	}
}

func TestNotFound(t *testing.T) {
	s := newStack(t, nil, false)
	id := s.send(t, `{"from":"a@example.com","to":["ok@example.org"],"subject":"plain","text":"x"}`)
	s.waitStatus(t, id, queue.StatusDelivered)
	c := client(t)
	for _, p := range []string{"/nope", "/messages/0190a1b2-0000-7000-8000-000000000000", "/messages/" + id + "/attachments/0",
		"/messages/" + id + "/attachments/-1", "/messages/" + id + "/html", "/live/messages/nope"} {
		if resp, _ := get(t, c, s.srv.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if resp, body := get(t, c, s.srv.URL+"/messages?status=bogus"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not valid") {
		t.Errorf("bad status filter: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, s.srv.URL+"/messages?since=yesterday"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad time filter: %d", resp.StatusCode)
	}
}

func TestOpenModeAndFilters(t *testing.T) {
	s := newStack(t, nil, false)
	a := s.send(t, `{"from":"shop@example.com","to":["ok@example.org"],"subject":"Your order","text":"x"}`)
	b := s.send(t, `{"from":"news@example.com","to":["bad@example.org"],"subject":"Weekly news","text":"x"}`)
	s.waitStatus(t, a, queue.StatusDelivered)
	s.waitStatus(t, b, queue.StatusFailed)
	c := client(t)
	resp, body := get(t, c, s.srv.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "needs no login") || len(resp.Cookies()) != 1 {
		t.Fatalf("open overview: %d cookies %v", resp.StatusCode, resp.Cookies())
	}
	for q, want := range map[string]string{"status=failed": b, "subject=order": a, "from=news": b, "rcpt=ok%40": a} {
		_, body := get(t, c, s.srv.URL+"/messages?"+q)
		other := a
		if want == a {
			other = b
		}
		if !strings.Contains(body, want) || strings.Contains(body, other) {
			t.Errorf("filter %s: want only %s", q, want)
		}
	}
	// A first visit to a message page gets a session and a working form.
	c = client(t)
	csrf := csrfOf(t, c, s.srv.URL+"/messages/"+b)
	if resp, _ := post(t, c, s.srv.URL+"/messages/"+b+"/requeue", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("requeue from a first visit: %d", resp.StatusCode)
	}
	s.waitStatus(t, b, queue.StatusFailed)
	_, body = get(t, c, s.srv.URL+"/messages/"+b)
	if !strings.Contains(body, "550") || !strings.Contains(body, "no such user") || !strings.Contains(body, `id="requeue"`) {
		t.Error("failed message page lacks its reply or the requeue button")
	}
}

// plainStore hides the SQLite store's Insights methods, like a store that
// does not have them.
type plainStore struct{ queue.Store }

func TestOverviewWithoutInsights(t *testing.T) {
	s := newStack(t, nil, false)
	id := s.send(t, `{"from":"a@example.com","to":["bad@example.org"],"subject":"x","text":"x"}`)
	s.waitStatus(t, id, queue.StatusFailed)
	c, err := outbox.New(outbox.Config{Store: plainStore{s.store}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `data-status="failed">1<`) || strings.Contains(body, "<svg") {
		t.Fatalf("overview without insights: %d, charts shown: %v", rec.Code, strings.Contains(body, "<svg"))
	}
	// With insights, the same store draws the charts and the route table.
	_, body = get(t, client(t), s.srv.URL+"/")
	if !strings.Contains(body, "<svg") || !strings.Contains(body, "relay:127.0.0.1") || !strings.Contains(body, "100%") {
		t.Fatal("overview with insights lacks charts or the route's error rate")
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	s := newStack(t, []string{testToken}, false)
	h, err := New(Config{Client: s.client, Tokens: []string{testToken}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "https://dash.example/login", strings.NewReader(url.Values{"token": {testToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	ck := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login over TLS: %d %+v", rec.Code, ck)
	}
}

func TestListPaging(t *testing.T) {
	s := newStack(t, nil, false)
	for i := range 51 {
		_, err := s.store.Enqueue(t.Context(), queue.NewMessage{From: "a@example.com", Recipients: []string{"ok@example.org"},
			Subject: "paged " + strconv.Itoa(i), Body: strings.NewReader("Subject: x\r\n\r\nx\r\n"), SendAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
	}
	c := client(t)
	_, body := get(t, c, s.srv.URL+"/messages?subject=paged")
	m := regexp.MustCompile(`href="(/messages\?[^"]*cursor=[^"]*)" rel="next"`).FindStringSubmatch(body)
	if m == nil || strings.Count(body, "<tr data-id=") != 50 || !strings.Contains(body, "paged 50<") {
		t.Fatalf("first page: next link %v, %d rows", m, strings.Count(body, "<tr data-id="))
	}
	next := strings.ReplaceAll(m[1], "&amp;", "&")
	_, body = get(t, c, s.srv.URL+next)
	if strings.Count(body, "<tr data-id=") != 1 || !strings.Contains(body, "paged 0<") || strings.Contains(body, `rel="next"`) {
		t.Fatalf("second page (%s): %d rows", next, strings.Count(body, "<tr data-id="))
	}
	if !strings.Contains(next, "subject=paged") {
		t.Fatalf("the next page lost the filter: %s", next)
	}
	resp, body := get(t, c, s.srv.URL+"/live/list?subject=paged+7")
	if resp.StatusCode != http.StatusOK || strings.Count(body, "<tr data-id=") != 1 || strings.Contains(body, "<html") {
		t.Fatalf("live rows: %d %d rows", resp.StatusCode, strings.Count(body, "<tr data-id="))
	}
}
