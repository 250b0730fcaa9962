package web

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/outbox-mail/outbox/queue"
)

// loginBrowser logs the browser in to s.
func loginBrowser(t *testing.T, ctx context.Context, s *stack) {
	t.Helper()
	run(t, ctx, "log in", chromedp.Navigate(s.srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), testToken), chromedp.Click(chromedp.CSS(`.login button`)))
	waitText(t, ctx, "h1", "Overview")
}

// clickJS clicks an element from script: a live region may swap it under
// a protocol-level click, whose node would then be gone.
func clickJS(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if !evaluate[bool](t, ctx, fmt.Sprintf(`(e => e ? (e.click(), true) : false)(document.querySelector(%q))`, sel)) {
		t.Fatalf("no %s to click on %s", sel, evaluate[string](t, ctx, "location.href"))
	}
}

// frameImageWidths returns the naturalWidth of every <img> in the
// sandboxed frame by its src (-1 while it loads). The page cannot reach
// into the frame's opaque origin, and Chrome runs sandboxed frames in a
// process of their own, so the test attaches to the frame's target and
// evaluates there through the DevTools protocol (the frame's own scripts
// stay disabled).
func frameImageWidths(t *testing.T, ctx context.Context, src string) map[string]int {
	t.Helper()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if info.Type != "iframe" || !strings.HasSuffix(info.URL, src) {
			continue
		}
		fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID), chromedp.WithDetachOnCancel())
		defer cancel()
		widths, err := chromedp.Run(fctx, chromedp.Evaluate[map[string]int](`Object.fromEntries([...document.images].map(i =>
			[i.getAttribute('src'), i.complete ? i.naturalWidth : -1]))`))
		if err != nil {
			t.Fatalf("evaluate in the frame: %v", err)
		}
		return widths
	}
	return nil
}

// TestBrowserInlineImage: the inline image shows in the sandboxed frame
// (its naturalWidth is the PNG's 12 pixels) with the session cookie
// nowhere in the frame's reach; the inline SVG does not render; nothing
// else was fetched.
func TestBrowserInlineImage(t *testing.T) {
	s := newStack(t, []string{testToken}, true)
	id := s.sendRaw(t, cidRaw(t))
	s.waitStatus(t, id, queue.StatusDelivered)
	ctx, dialogs := browser(t)
	loginBrowser(t, ctx, s)
	run(t, ctx, "open the message", chromedp.Navigate(s.srv.URL+"/messages/"+id), chromedp.WaitVisible(chromedp.CSS("iframe.html")))
	var widths map[string]int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		widths = frameImageWidths(t, ctx, "/messages/"+id+"/html")
		if len(widths) == 2 && !slices.Contains(mapValues(widths), -1) {
			break
		}
	}
	var logo, svg int
	for src, w := range widths {
		switch {
		case strings.HasPrefix(src, "/messages/"+id+"/cid/logo@shop.example?k="):
			logo = w
		case strings.HasPrefix(src, "/messages/"+id+"/cid/vector@shop.example?k="):
			svg = w
		default:
			t.Errorf("image %q in the frame was not rewritten", src)
		}
	}
	if logo != 12 || svg != 0 {
		t.Errorf("naturalWidth: inline PNG %d (want 12), inline SVG %d (want 0, never rendered): %v", logo, svg, widths)
	}
	if n := dialogs.Load(); n != 0 || s.pwned.Load() != 0 {
		t.Errorf("%d dialogs, %d requests to /pwned", n, s.pwned.Load())
	}
	screenshot(t, ctx, "inline-image")
}

func mapValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestBrowserTabs: each tab link shows its view, without script.
func TestBrowserTabs(t *testing.T) {
	s := newStack(t, nil, true)
	id := s.sendRaw(t, cidRaw(t))
	s.waitStatus(t, id, queue.StatusDelivered)
	ctx, _ := browser(t)
	run(t, ctx, "open the message", chromedp.Navigate(s.srv.URL+"/messages/"+id), chromedp.WaitVisible(chromedp.CSS("#panel-html iframe")))
	for _, c := range []struct{ tab, shows, text string }{
		{"text", "#panel-text pre.text", "Your parcel left the depot."},
		{"links", "#panel-links table.links", "the text shows bank.example but the link goes to evil.example"},
		{"headers", "#panel-headers table.headers", "Ann Müller <ok@example.org>"},
		{"source", "#panel-source pre.source", "Content-Type: multipart/related; boundary=REL"},
		{"attachments", "#panel-attachments table.attachments", "logo@shop.example"},
		{"html", "#panel-html iframe.html", ""},
	} {
		clickJS(t, ctx, "#tab-"+c.tab)
		run(t, ctx, "open the "+c.tab+" tab", chromedp.WaitVisible(chromedp.CSS(c.shows)))
		got := evaluate[string](t, ctx, fmt.Sprintf(`document.querySelector(%q).textContent`, c.shows))
		current := evaluate[string](t, ctx, `document.querySelector('.tabs [aria-current]').id`)
		panels := evaluate[int](t, ctx, `document.querySelectorAll('.panel').length`)
		if !strings.Contains(got, c.text) || current != "tab-"+c.tab || panels != 1 {
			t.Errorf("tab %s: shows %.80q, current %q, %d panels", c.tab, got, current, panels)
		}
		if c.tab == "links" {
			screenshot(t, ctx, "tab-links")
		}
	}
}

// TestBrowserSearch: the list and the inbox find a message by a word of
// its text body and by a display name, typed into the search field.
func TestBrowserSearch(t *testing.T) {
	s := newStack(t, nil, true)
	id := s.sendRaw(t, cidRaw(t))
	other := s.send(t, `{"from":"Other Sender <other@example.com>","to":["ok@example.org"],"subject":"Parcel news","text":"Nothing to track."}`)
	s.waitStatus(t, id, queue.StatusDelivered)
	s.waitStatus(t, other, queue.StatusDelivered)
	waitIndexed(t, s, "news", other) // so that finding only id means something
	ctx, _ := browser(t)
	for _, c := range []struct{ page, query string }{
		{"/messages", "depot"}, {"/messages", "Bob Builder"}, {"/inbox", "depot"}, {"/inbox", "müller"},
	} {
		run(t, ctx, "open "+c.page, chromedp.Navigate(s.srv.URL+c.page), chromedp.WaitVisible(chromedp.CSS(`input[name="q"]`)))
		// The index is written moments after acceptance: search again
		// until it has caught up.
		var ids []string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			run(t, ctx, "search", chromedp.SetValue(chromedp.CSS(`input[name="q"]`), c.query),
				chromedp.Submit(chromedp.CSS(`input[name="q"]`)), chromedp.WaitVisible(chromedp.CSS(`input[name="q"]`)))
			ids = evaluate[[]string](t, ctx, `[...document.querySelectorAll('[data-id]')].map(e => e.dataset.id)`)
			if slices.Equal(ids, []string{id}) {
				break
			}
		}
		if !slices.Equal(ids, []string{id}) {
			t.Errorf("%s search %q found %v, want only %s", c.page, c.query, ids, id)
		}
		if q := evaluate[string](t, ctx, `new URLSearchParams(location.search).get("q")`); q != c.query {
			t.Errorf("%s: the search is not in the address (%q)", c.page, q)
		}
	}
	screenshot(t, ctx, "inbox-search")
}

// TestBrowserRelease: a captured message is released, after the
// confirmation, to the recipient typed in, and a real go-smtp server on
// loopback receives it.
func TestBrowserRelease(t *testing.T) {
	s, _ := releaseStack(t, []string{testToken})
	id := s.sendRaw(t, cidRaw(t))
	s.waitStatus(t, id, queue.StatusDelivered)
	ctx, dialogs := browser(t)
	loginBrowser(t, ctx, s)
	run(t, ctx, "open the message", chromedp.Navigate(s.srv.URL+"/messages/"+id), chromedp.WaitVisible(chromedp.CSS("#release")))
	clickJS(t, ctx, "#release")
	run(t, ctx, "release form", chromedp.WaitVisible(chromedp.CSS("#release-to")))
	if to := evaluate[string](t, ctx, `document.querySelector('#release-to').value`); to != "ok@example.org\nbob@example.org" {
		t.Errorf("release form recipients %q, want the original ones", to)
	}
	run(t, ctx, "choose the recipient", chromedp.SetValue(chromedp.CSS("#release-to"), "qa@example.net"))
	screenshot(t, ctx, "release-form")
	clickJS(t, ctx, "#release-review")
	run(t, ctx, "confirmation", chromedp.WaitVisible(chromedp.CSS("#release-send")))
	if n := len(s.sink.Received()); n != 0 {
		t.Fatalf("%d messages sent before the confirmation", n)
	}
	waitText(t, ctx, "#release-rcpts", "qa@example.net")
	screenshot(t, ctx, "release-confirm")
	clickJS(t, ctx, "#release-send")
	run(t, ctx, "released", chromedp.WaitVisible(chromedp.CSS("#release-done")))
	if n := s.sink.WaitFor(1, 10*time.Second); n != 1 {
		t.Fatalf("the sink received %d messages", n)
	}
	got := s.sink.Received()[0]
	if !slices.Equal(got.To, []string{"qa@example.net"}) || !strings.Contains(string(got.Data), "Subject: Your parcel") {
		t.Errorf("sink received to %v:\n%.200s", got.To, got.Data)
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d dialogs", n)
	}
}

// TestBrowserStatusNoWrap: at 1400 px the list's status cells stay on one
// line, with long subjects and many recipients squeezing the table.
func TestBrowserStatusNoWrap(t *testing.T) {
	s := newStack(t, nil, false)
	long := strings.Repeat("A very long subject that wants all the room ", 4)
	var rcpts []string
	for i := range 6 {
		rcpts = append(rcpts, fmt.Sprintf(`"recipient-number-%d@a-rather-long-domain.example.org"`, i))
	}
	id := s.send(t, `{"from":"Someone With A Long Name <someone.with.a.long.address@example.com>","to":[`+strings.Join(rcpts, ",")+
		`],"subject":"`+long+`","text":"x"}`)
	bad := s.send(t, `{"from":"shop@example.com","to":["bad@example.org"],"subject":"`+long+`","text":"x"}`)
	s.waitStatus(t, id, queue.StatusDelivered)
	s.waitStatus(t, bad, queue.StatusFailed)
	ctx, _ := browser(t)
	run(t, ctx, "1400 px", chromedp.EmulateViewport(1400, 900))
	run(t, ctx, "open the list", chromedp.Navigate(s.srv.URL+"/messages"), chromedp.WaitVisible(chromedp.CSS("table.messages")))
	lines := evaluate[[]int](t, ctx, `[...document.querySelectorAll('table.messages .status')].map(e =>
		Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)))`)
	if len(lines) != 2 || lines[0] != 1 || lines[1] != 1 {
		t.Errorf("status cells span %v lines, want 1 each", lines)
	}
	screenshot(t, ctx, "list-1400")
}

// TestBrowserNarrow: at 375 px (a phone) every page fits the width, with
// the message list as cards; the screenshots are for a person to look at.
func TestBrowserNarrow(t *testing.T) {
	s, _ := releaseStack(t, nil)
	id := s.sendRaw(t, cidRaw(t))
	s.waitStatus(t, id, queue.StatusDelivered)
	waitIndexed(t, s, "depot", id)
	ctx, _ := browser(t)
	run(t, ctx, "375 px", chromedp.EmulateViewport(375, 740, chromedp.EmulateScale(1), chromedp.EmulateMobile))
	for _, p := range []struct{ path, wait, shot string }{
		{"/", ".counts", "narrow-overview"},
		{"/messages", "table.messages", "narrow-list"},
		{"/inbox", ".inbox", "narrow-inbox"},
		{"/messages/" + id, "iframe.html", "narrow-detail"},
		{"/messages/" + id + "?tab=links", "table.links", "narrow-links"},
		{"/messages/" + id + "/release", "#release-to", "narrow-release"},
		{"/suppressions", "main h1", "narrow-suppressions"},
	} {
		run(t, ctx, "open "+p.path, chromedp.Navigate(s.srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)))
		// Let the live regions refresh once, as a person would see them,
		// and the frame load its images.
		run(t, ctx, "settle", chromedp.Sleep(400*time.Millisecond))
		if p.wait == "iframe.html" {
			// Chrome paints a frame of another process only on screen.
			evaluate[bool](t, ctx, `(e => (e.scrollIntoView(), true))(document.querySelector('iframe.html'))`)
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if w := frameImageWidths(t, ctx, "/messages/"+id+"/html"); len(w) == 2 && !slices.Contains(mapValues(w), -1) {
					break
				}
			}
		}
		if w := evaluate[int](t, ctx, `document.documentElement.scrollWidth`); w > 375 {
			wide := evaluate[string](t, ctx, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 376 && !e.closest('.scroll, pre, .tabs')).slice(0, 5).map(e => e.tagName + '.' + e.className).join(' ')`)
			t.Errorf("%s is %d px wide at 375 px: %s", p.path, w, wide)
		}
		screenshot(t, ctx, p.shot)
	}
}
