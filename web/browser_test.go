package web

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/outbox-mail/outbox/internal/testenv"
	"github.com/outbox-mail/outbox/queue"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium on a fresh profile. In CI (CI set),
// which installs it, a missing Chromium fails the test: a skipped browser
// test would hide that it did not run. On a developer's machine without
// it, the test skips with the line that installs it, as the PostgreSQL
// tests do without their server.
// dialogs counts JavaScript dialogs (alert, confirm), which are dismissed.
func browser(t *testing.T) (ctx context.Context, dialogs *atomic.Int64) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Missing(t, "Chromium is not installed at %s (%v); install it to run the browser tests: apt-get update && apt-get install -y chromium", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("Chromium at %s would not start: %v", chromiumPath, err)
	}
	dialogs = new(atomic.Int64)
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range events {
			if err != nil {
				return
			}
			dialogs.Add(1)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return ctx, dialogs
}

// artifacts is where screenshots go: $OUTBOX_ARTIFACTS or testdata/artifacts.
func artifacts(t *testing.T) string {
	dir := os.Getenv("OUTBOX_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// evaluate runs a JavaScript expression (awaiting a promise) in the page.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifacts(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitText polls sel's text until it equals want, without reloading.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		var err error
		if got, err = chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel))); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(got) == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " :: " + document.documentElement.outerHTML.slice(0, 600)`))
	t.Fatalf("%s shows %q, want %q (at %s)", sel, got, want, loc)
}

func TestBrowserScenario(t *testing.T) {
	s := newStack(t, []string{testToken}, false)
	ctx, dialogs := browser(t)
	base := s.srv.URL

	run(t, ctx, "open the dashboard", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	screenshot(t, ctx, "login")
	run(t, ctx, "log in", chromedp.SendKeys(chromedp.CSS("#token"), testToken), chromedp.Click(chromedp.CSS(`.login button`)))
	waitText(t, ctx, "h1", "Overview")

	ok := s.send(t, `{"from":"shop@example.com","to":["ok@example.org"],"subject":"Order shipped","text":"It has shipped.","html":"<p>It has <b>shipped</b>.</p>"}`)
	slow := s.send(t, `{"from":"shop@example.com","to":["slow@example.org"],"subject":"Greylisted","text":"Try later."}`)
	bad := s.send(t, `{"from":"shop@example.com","to":["bad@example.org"],"subject":"Bounced","text":"Nobody home."}`)
	s.waitStatus(t, ok, queue.StatusDelivered)
	s.waitStatus(t, slow, queue.StatusDeferred)
	s.waitStatus(t, bad, queue.StatusFailed)

	// The overview refreshes by itself: the delivered count reaches 1.
	waitText(t, ctx, `.n[data-status="delivered"]`, "1")
	waitText(t, ctx, `.n[data-status="failed"]`, "1")
	screenshot(t, ctx, "overview")

	run(t, ctx, "list", chromedp.Navigate(base+"/messages"), chromedp.WaitVisible(chromedp.CSS("table.messages")))
	for id, want := range map[string]string{ok: "delivered", slow: "deferred", bad: "failed"} {
		waitText(t, ctx, `tr[data-id="`+id+`"] .status`, want)
	}
	screenshot(t, ctx, "list")

	// Clicked from script: the live region may swap the row under a
	// protocol-level click, whose node would then be gone.
	evaluate[bool](t, ctx, `document.querySelector('tr[data-id="`+slow+`"] a').click() || true`)
	run(t, ctx, "open the deferred message", chromedp.WaitVisible(chromedp.CSS("#retry")))
	waitText(t, ctx, "#message-status", "deferred")
	// A marker on window survives only if the page is never reloaded.
	run(t, ctx, "mark the page", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[int](`window.__sameDocument = 42`)(ctx, tg)
		return err
	}))
	s.fixed.Store(true)
	run(t, ctx, "retry now", chromedp.Click(chromedp.CSS("#retry")))
	waitText(t, ctx, "#message-status", "delivered")
	if marker := evaluate[int](t, ctx, `window.__sameDocument || 0`); marker != 42 {
		t.Fatal("the page was reloaded to show the new status")
	}
	screenshot(t, ctx, "detail")

	run(t, ctx, "open the delivered message", chromedp.Navigate(base+"/messages/"+ok), chromedp.WaitVisible(chromedp.CSS("iframe.html")))
	screenshot(t, ctx, "detail-html")
	if n := dialogs.Load(); n != 0 {
		t.Fatalf("%d JavaScript dialogs opened", n)
	}
}

func TestBrowserMaliciousMessageInert(t *testing.T) {
	s := newStack(t, nil, true)
	id := s.sendRaw(t, maliciousRaw)
	s.waitStatus(t, id, queue.StatusDelivered)
	ctx, dialogs := browser(t)
	base := s.srv.URL
	const subject = `<img src=/pwned-img onerror="alert(1)">`
	views := []struct{ path, subjectSel string }{
		{"/messages", `tr[data-id="` + id + `"] td a`},
		{"/inbox", `.inbox .subject`},
		{"/messages/" + id, `h1.subject`},
	}
	for _, v := range views {
		run(t, ctx, "open "+v.path, chromedp.Navigate(base+v.path), chromedp.WaitVisible(chromedp.CSS(v.subjectSel)),
			chromedp.Sleep(500*time.Millisecond)) // let any injected script or image fire
		text := evaluate[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).textContent`, v.subjectSel))
		imgs := evaluate[int](t, ctx, `document.querySelectorAll('img[src="/pwned-img"]').length`)
		pwned := evaluate[int](t, ctx, `window.__pwned || 0`)
		if text != subject || imgs != 0 || pwned != 0 {
			t.Errorf("%s: subject shown as %q, %d injected images, marker %d", v.path, text, imgs, pwned)
		}
		if v.path == "/inbox" {
			screenshot(t, ctx, "inbox")
		}
	}
	screenshot(t, ctx, "malicious-detail")
	if sb := evaluate[string](t, ctx, `String(document.querySelector('iframe.html').getAttribute('sandbox'))`); sb != "" {
		t.Errorf("iframe sandbox = %q, want present and empty", sb)
	}
	run(t, ctx, "open the attachments tab", chromedp.Click(chromedp.CSS("#tab-attachments")),
		chromedp.WaitVisible(chromedp.CSS("table.attachments")))
	cd := evaluate[string](t, ctx, `fetch(document.querySelector('.attachments a').href).then(r => r.headers.get('Content-Disposition'))`)
	if cd != "attachment; filename=passwd.html" {
		t.Errorf("download Content-Disposition %q", cd)
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
	if n := s.pwned.Load(); n != 0 {
		t.Errorf("the malicious message made %d requests to /pwned*", n)
	}
}
