package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// indexer is what stores built on queue.Queue offer to index at once.
type indexer interface {
	IndexPending(ctx context.Context) (int, error)
}

// mimeMsg is a message with a MIME body, to ann@ and bob@ from the shop.
func mimeMsg(subject, body string) queue.NewMessage {
	return queue.NewMessage{From: "bounces@shop.example", Recipients: []string{"ann@x.test", "bob@y.test"},
		Subject: subject, Body: strings.NewReader(body)}
}

const searchPlain = "From: Shop Support <support@shop.example>\r\n" +
	"To: =?utf-8?q?Ann_M=C3=BCller?= <ann@x.test>\r\n" +
	"Cc: \"Bob, the Builder\" <bob@y.test>\r\n" +
	"Subject: Your order\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=B\r\n\r\n" +
	"--B\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n" +
	"--A\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
	"Your parcel has shipped from our caf=C3=A9 in Z=C3=BCrich.\r\n" +
	"--A\r\nContent-Type: text/html\r\n\r\n<p>HTML words hidden</p>\r\n--A--\r\n" +
	"--B\r\nContent-Type: application/pdf; name=invoice-2024.pdf\r\nContent-Disposition: attachment\r\n\r\nJVBERi0=\r\n" +
	"--B--\r\n"

const searchHTML = "From: News <news@paper.example>\r\nTo: ann@x.test\r\nSubject: Weekly\r\n" +
	"Content-Type: text/html; charset=iso-8859-1\r\n\r\n" +
	"<html><head><style>.secretstyle{}</style><script>secretscript()</script></head>" +
	"<body><h1>Gr\xfc\xdfe</h1><p>Headline tonight</p></body></html>\r\n"

// waitSearch polls List with Search until it returns exactly want (in
// any order), for a bounded time: the index is written off the accept
// path, moments after the commit.
func waitSearch(t *testing.T, s queue.Store, f queue.Filter, want ...string) {
	t.Helper()
	slices.Sort(want)
	var got []string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got = searchIDs(t, s, f)
		if slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("search %+v found %v, want %v", f, got, want)
}

func searchIDs(t *testing.T, s queue.Store, f queue.Filter) []string {
	t.Helper()
	page, err := s.List(context.Background(), f)
	if err != nil {
		t.Fatalf("List(%+v): %v", f, err)
	}
	var got []string
	for _, m := range page.Messages {
		got = append(got, m.ID)
	}
	slices.Sort(got)
	return got
}

// testSearch: subject, envelope and header addresses with display names,
// the plain text (decoded, accents aside), attachment names and an
// HTML-only body's text are found, whole words and the last one also as
// a prefix of three characters or more; markup, scripts and the HTML
// alternative of a plain part are not.
func testSearch(t *testing.T, s queue.Store) {
	plain := enqueue(t, s, mimeMsg("Your order", searchPlain))
	html := enqueue(t, s, mimeMsg("Weekly", searchHTML))
	other := enqueue(t, s, newMsg("carol@z.test"))
	waitSearch(t, s, queue.Filter{Search: "shipped"}, plain)
	waitSearch(t, s, queue.Filter{Search: "headline"}, html)
	waitSearch(t, s, queue.Filter{Search: "carol"}, other)
	for q, want := range map[string][]string{
		"parcel SHIPPED":   {plain},
		"ship":             {plain},
		"cafe zurich":      {plain},
		"Café Zürich":      {plain},
		"müller":           {plain},
		"Builder":          {plain},
		"support@shop":     {plain},
		"invoice 2024":     {plain},
		"order":            {plain},
		"ann@x.test":       {plain, html},
		"bounces":          {plain, html},
		"carol":            {other},
		"grüße headline":   {html},
		"gruß":             {html},
		"gru":              {html},
		"gr":               nil,
		"shipp parcel":     nil,
		"Grüße":            {html},
		"hello":            {other},
		"secretscript":     nil,
		"secretstyle":      nil,
		"hidden":           nil,
		"shipped headline": nil,
		"nowhere":          nil,
	} {
		if got := searchIDs(t, s, queue.Filter{Search: q}); !slices.Equal(got, sorted(want)) {
			t.Errorf("search %q = %v, want %v", q, got, want)
		}
	}
	// Search combines with the other filters.
	if got := searchIDs(t, s, queue.Filter{Search: "ann", Subject: "week"}); !slices.Equal(got, []string{html}) {
		t.Errorf("search with subject filter = %v, want %v", got, html)
	}
	if got := searchIDs(t, s, queue.Filter{Search: "ann", Status: queue.StatusDelivered}); len(got) != 0 {
		t.Errorf("search with status filter = %v, want none", got)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// testSearchMailboxes: Get and List give the header's mailboxes with their
// decoded display names once the message is indexed.
func testSearchMailboxes(t *testing.T, s queue.Store) {
	id := enqueue(t, s, mimeMsg("Your order", searchPlain))
	waitSearch(t, s, queue.Filter{Search: "parcel"}, id)
	want := []queue.Mailbox{{Field: "from", Name: "Shop Support", Address: "support@shop.example"},
		{Field: "to", Name: "Ann Müller", Address: "ann@x.test"}, {Field: "cc", Name: "Bob, the Builder", Address: "bob@y.test"}}
	if m := get(t, s, id); !slices.Equal(m.Mailboxes, want) {
		t.Errorf("Get: mailboxes %+v, want %+v", m.Mailboxes, want)
	}
	page, err := s.List(context.Background(), queue.Filter{})
	if err != nil || len(page.Messages) != 1 || !slices.Equal(page.Messages[0].Mailboxes, want) {
		t.Fatalf("List: %+v, %v; want mailboxes %+v", page, err, want)
	}
}

// testSearchInvalid: a search with nothing to look for, or too much, is
// refused naming the field; so is text no column can hold.
func testSearchInvalid(t *testing.T, s queue.Store) {
	var many []string
	for i := range queue.MaxSearchWords + 1 {
		many = append(many, fmt.Sprintf("w%d", i))
	}
	for _, q := range []string{"!!! ...", strings.Join(many, " "), "a\x00b", "\xff"} {
		_, err := s.List(context.Background(), queue.Filter{Search: q})
		if !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), "Search") {
			t.Errorf("search %q: %v, want ErrInvalid naming Search", q, err)
		}
	}
	// Repeated words count once.
	if _, err := s.List(context.Background(), queue.Filter{Search: strings.Repeat("same ", 40)}); err != nil {
		t.Errorf("repeated words: %v", err)
	}
}

// testSearchLargeBody: a body too large to be held in memory is read back
// from the store for its text.
func testSearchLargeBody(t *testing.T, s queue.Store) {
	body := "Subject: big\r\nContent-Type: text/plain\r\n\r\nNeedle haystack\r\n" + strings.Repeat("filler line\r\n", 40000)
	id := enqueue(t, s, mimeMsg("big", body))
	waitSearch(t, s, queue.Filter{Search: "needle"}, id)
}

// testSearchDeleted: deleting a message takes it out of the index.
func testSearchDeleted(t *testing.T, s queue.Store) {
	ctx := context.Background()
	gone := enqueue(t, s, mimeMsg("Your order", searchPlain))
	kept := enqueue(t, s, mimeMsg("Your order", searchPlain))
	waitSearch(t, s, queue.Filter{Search: "parcel"}, gone, kept)
	c := claim(t, s, "w", 10, time.Minute)
	for _, m := range c {
		var rs []queue.RecipientResult
		for _, r := range m.Recipients {
			rs = append(rs, queue.RecipientResult{Address: r.Address, Status: queue.RecipientDelivered, Code: 250})
		}
		complete(t, s, "w", queue.Result{MessageID: m.ID, Recipients: rs})
	}
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, s, queue.Filter{Search: "parcel"}); !slices.Equal(got, []string{kept}) {
		t.Errorf("after Delete: search = %v, want %v", got, kept)
	}
	if n, err := s.Purge(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if got := searchIDs(t, s, queue.Filter{Search: "parcel"}); len(got) != 0 {
		t.Errorf("after Purge: search = %v, want none", got)
	}
}

// runSearchEnqueueTx: mail written in the application's transaction is
// indexed by IndexPending (and by the indexer's own scan, later).
func runSearchEnqueueTx[TTx any](t *testing.T, h Harness[TTx]) {
	s := h.Open(t)
	ix, ok := s.(indexer)
	if !ok {
		t.Fatalf("%T has no IndexPending", s)
	}
	id := enqueueTx(t, h, s, true, searchPlain)
	if n, err := ix.IndexPending(context.Background()); err != nil || n < 1 {
		t.Fatalf("IndexPending = %d, %v; want the message indexed", n, err)
	}
	if got := searchIDs(t, s, queue.Filter{Search: "Zürich parcel"}); !slices.Equal(got, []string{id}) {
		t.Fatalf("search after IndexPending = %v, want %v", got, id)
	}
	if n, err := ix.IndexPending(context.Background()); err != nil || n != 0 {
		t.Fatalf("second IndexPending = %d, %v; want nothing left", n, err)
	}
}

// testSearchPaging: a search pages newest first by the cursor, every
// match once, with other filters applied as it goes.
func testSearchPaging(t *testing.T, s queue.Store) {
	var want []string
	for i := range 7 {
		m := newMsg("pager@x.test")
		m.Body = strings.NewReader("Subject: paged\r\n\r\nPaginated words " + fmt.Sprint(i) + "\r\n")
		want = append(want, enqueue(t, s, m))
	}
	enqueue(t, s, newMsg("other@x.test"))
	slices.Reverse(want)
	waitSearch(t, s, queue.Filter{Search: "paginated", Limit: 10}, slices.Clone(want)...)
	var got []string
	f := queue.Filter{Search: "paginated words", Limit: 3}
	for range 4 {
		page, err := s.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			got = append(got, m.ID)
		}
		if f.Cursor = page.Next; f.Cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged search = %v, want %v (newest first)", got, want)
	}
	if got := searchIDs(t, s, queue.Filter{Search: "paginated", Recipient: "pager", Status: queue.StatusQueued, Limit: 2}); len(got) != 2 ||
		!slices.Contains(want[:2], got[0]) || !slices.Contains(want[:2], got[1]) {
		t.Errorf("search with filters = %v, want the two newest of %v", got, want)
	}
}
