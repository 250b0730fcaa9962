package queuetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// testEventText: event text is checked for CR, LF and NUL alike on every
// driver, whether the events come alone or with a result.
func testEventText(t *testing.T, s queue.Store) {
	ctx := context.Background()
	for name, e := range map[string]queue.NewEvent{
		"CRLF in endpoint":  {Endpoint: "http://127.0.0.1:1/h\r\nX: y", Type: "failed"},
		"LF in type":        {Endpoint: "http://127.0.0.1:1/h", Type: "fail\n"},
		"NUL in message id": {Endpoint: "http://127.0.0.1:1/h", Type: "failed", MessageID: "m\x00"},
		"invalid UTF-8":     {Endpoint: "http://127.0.0.1:1/\xff", Type: "failed"},
	} {
		if err := s.AddEvents(ctx, []queue.NewEvent{e}); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("AddEvents with %s: %v, want ErrInvalid", name, err)
		}
		id := enqueue(t, s, newMsg("b@x.test"))
		claimOne(t, s, "w", id, time.Minute)
		_, err := s.Complete(ctx, "w", []queue.Result{{MessageID: id, Events: []queue.NewEvent{e},
			Recipients: []queue.RecipientResult{{Address: "b@x.test", Status: queue.RecipientDelivered}}}})
		if !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("Complete with an event with %s: %v, want ErrInvalid", name, err)
		}
		wantStatus(t, s, id, queue.StatusSending)
	}
	if _, ok, err := s.NextEventDue(ctx); err != nil || ok {
		t.Errorf("refused events were stored: %v %v", ok, err)
	}
}

// testBadResultStatus: a result can report delivered, deferred or failed
// only; anything else is ErrInvalid and records nothing.
func testBadResultStatus(t *testing.T, s queue.Store) {
	id := enqueue(t, s, newMsg("b@x.test"))
	claimOne(t, s, "w", id, time.Minute)
	for _, st := range []queue.RecipientStatus{"", queue.RecipientPending, queue.RecipientBounced, "sent"} {
		_, err := s.Complete(context.Background(), "w", []queue.Result{{MessageID: id,
			Recipients: []queue.RecipientResult{{Address: "b@x.test", Status: st}}}})
		if !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("Complete with recipient status %q: %v, want ErrInvalid", st, err)
		}
	}
	m := wantStatus(t, s, id, queue.StatusSending)
	if m.Recipients[0].Attempts != 0 {
		t.Errorf("a refused result changed the recipient: %+v", m.Recipients[0])
	}
}

// testTextValidated: what no database column holds is refused alike.
func testTextValidated(t *testing.T, s queue.Store) {
	for name, mod := range map[string]func(*queue.NewMessage){
		"NUL in subject":        func(m *queue.NewMessage) { m.Subject = "a\x00b" },
		"invalid UTF-8 subject": func(m *queue.NewMessage) { m.Subject = "\xff" },
		"NUL in tag":            func(m *queue.NewMessage) { m.Tags = map[string]string{"k": "\x00"} },
		"unknown source":        func(m *queue.NewMessage) { m.Source = "carrier-pigeon" },
		"bad RET":               func(m *queue.NewMessage) { m.DSN.Return = "ALL" },
		"CRLF in ENVID":         func(m *queue.NewMessage) { m.DSN.EnvID = "x\r\ny" },
		"bad NOTIFY":            func(m *queue.NewMessage) { m.RecipientDSN = []queue.RecipientDSN{{Notify: []string{"ALWAYS"}}} },
		"RecipientDSN too short": func(m *queue.NewMessage) {
			m.Recipients = append(m.Recipients, "c@x.test")
			m.RecipientDSN = []queue.RecipientDSN{{}}
		},
		"repair with space": func(m *queue.NewMessage) { m.Repairs = []string{"message id"} },
	} {
		m := newMsg("b@x.test")
		mod(&m)
		if id, err := s.Enqueue(context.Background(), m); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("%s: Enqueue = %q, %v; want ErrInvalid", name, id, err)
		}
	}
	wantEmpty(t, s)
}

// testFlags: delivery flags are typed fields, stored and given back on
// Get and on every claim; tags are the user's and change none of them.
func testFlags(t *testing.T, s queue.Store) {
	m := newMsg("a@x.test", "b@x.test")
	m.Source = queue.SourceSMTP
	m.Flags = queue.Flags{EightBit: true, SMTPUTF8: true, DSN: queue.DSN{Return: queue.DSNReturnHeaders, EnvID: "env-1"}, Unsubscribe: true}
	m.RecipientDSN = []queue.RecipientDSN{{Notify: []string{"FAILURE", "DELAY"}, ORcpt: "orig@x.test"}, {Notify: []string{"NEVER"}}}
	m.Repairs = []string{"date", "message-id"}
	m.Tags = map[string]string{"body": "7bit", "smtputf8": "0", "source": "api"}
	id := enqueue(t, s, m)
	check := func(where string, got queue.Message) {
		t.Helper()
		if got.Source != queue.SourceSMTP || !reflect.DeepEqual(got.Flags, m.Flags) || !reflect.DeepEqual(got.Repairs, m.Repairs) {
			t.Errorf("%s: source %q flags %+v repairs %v, want %q %+v %v", where, got.Source, got.Flags, got.Repairs, m.Source, m.Flags, m.Repairs)
		}
		if !reflect.DeepEqual(got.Tags, m.Tags) {
			t.Errorf("%s: tags %v, want %v as given", where, got.Tags, m.Tags)
		}
		if len(got.Recipients) != 2 || !reflect.DeepEqual(got.Recipients[0].DSN, m.RecipientDSN[0]) ||
			!reflect.DeepEqual(got.Recipients[1].DSN, m.RecipientDSN[1]) {
			t.Errorf("%s: recipients %+v, want DSN %+v", where, got.Recipients, m.RecipientDSN)
		}
	}
	check("Get", *get(t, s, id))
	check("Claim", claimOne(t, s, "w", id, time.Minute).Message)
	// A message without any gets the library source and no flags.
	plain := get(t, s, enqueue(t, s, newMsg("c@x.test")))
	if plain.Source != queue.SourceLibrary || plain.Flags != (queue.Flags{}) || plain.Repairs != nil {
		t.Errorf("plain message: source %q flags %+v repairs %v", plain.Source, plain.Flags, plain.Repairs)
	}
	// A body with 8-bit bytes is 8-bit whatever the producer said, on the
	// leased path too, and even when the byte comes after the first chunk.
	for _, size := range []int{100, 3 * queue.DefaultChunkSize} {
		m := newMsg("d@x.test")
		m.Body = strings.NewReader("Subject: s\r\n\r\n" + strings.Repeat("a", size) + "Gr\xc3\xbc\xc3\x9fe\r\n")
		if got := get(t, s, enqueue(t, s, m)); !got.EightBit {
			t.Errorf("an undeclared 8-bit body of %d bytes is not marked 8-bit", size)
		}
		m.Body = strings.NewReader("Subject: s\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n")
		if e := enqueueLeased(t, s, m, "w", time.Minute); e.Claimed == nil || !e.Claimed.EightBit {
			t.Errorf("an undeclared 8-bit body handed over leased is not marked 8-bit: %+v", e.Claimed)
		}
	}
	// A line over 998 octets is noted for delivery to re-encode; 998 is not.
	for _, n := range []int{998, 999} {
		m := newMsg("e@x.test")
		m.Body = strings.NewReader("Subject: s\r\n\r\n" + strings.Repeat("b", n) + "\r\n")
		got := get(t, s, enqueue(t, s, m))
		if got.LongLines != (n > 998) || got.EightBit {
			t.Errorf("a body line of %d octets: LongLines %v, EightBit %v", n, got.LongLines, got.EightBit)
		}
	}
	// CheckLongLines sees the whole spooled body of a message with a long
	// line, and its refusal stores nothing; other messages skip it.
	refused := errors.New("refused by the check")
	for _, n := range []int{998, 999} {
		var seen string
		m := newMsg("f@x.test")
		body := "Subject: s\r\n\r\n" + strings.Repeat("c", n) + "\r\n"
		m.Body = strings.NewReader(body)
		m.CheckLongLines = func(r io.Reader) error {
			b, _ := io.ReadAll(r)
			seen = string(b)
			return refused
		}
		_, err := s.Enqueue(context.Background(), m)
		switch {
		case n == 998 && (err != nil || seen != ""):
			t.Errorf("no long line: Enqueue %v, check called: %v", err, seen != "")
		case n == 999 && (!errors.Is(err, refused) || seen != body):
			t.Errorf("a long line: Enqueue %v (want the check's error), check saw %d of %d octets", err, len(seen), len(body))
		}
	}
}

func enqueueLeased(t *testing.T, s queue.Store, m queue.NewMessage, owner string, lease time.Duration) queue.Enqueued {
	t.Helper()
	e, err := s.EnqueueLeased(context.Background(), m, owner, lease)
	if err != nil {
		t.Fatalf("EnqueueLeased: %v", err)
	}
	return e
}

// testLeased: fresh mail due now is written leased to the accepting node
// and returned as a claim would return it, with its body; nobody else can
// claim it, and its owner completes it like a claimed message.
func testLeased(t *testing.T, s queue.Store) {
	body := "Subject: hello\r\n\r\nleased\r\n"
	m := newMsg("a@x.test", "b@x.test")
	m.Body = strings.NewReader(body)
	m.Flags.EightBit = true
	before := time.Now()
	e := enqueueLeased(t, s, m, "node-1", time.Minute)
	c := e.Claimed
	if c == nil {
		t.Fatal("EnqueueLeased of fresh mail returned no claim")
	}
	if c.ID != e.ID || c.Status != queue.StatusSending || c.Attempts != 1 || c.Size != int64(len(body)) ||
		len(c.Recipients) != 2 || !c.EightBit || c.Source != queue.SourceLibrary {
		t.Errorf("claim %+v", c.Message)
	}
	if c.LeaseExpiresAt.Before(before.Add(time.Minute-time.Second)) || c.LeaseExpiresAt.After(time.Now().Add(time.Minute+time.Second)) {
		t.Errorf("LeaseExpiresAt %v, want about a minute from now", c.LeaseExpiresAt)
	}
	if string(e.Body) != body {
		t.Errorf("Body = %q, want the enqueued body", e.Body)
	}
	// What Get says agrees with the claim.
	got := wantStatus(t, s, e.ID, queue.StatusSending)
	if got.Attempts != 1 || !near(got.CreatedAt, c.CreatedAt) || !near(got.ExpiresAt, c.ExpiresAt) {
		t.Errorf("Get = attempts %d created %v expires %v; claim said %v %v", got.Attempts, got.CreatedAt, got.ExpiresAt, c.CreatedAt, c.ExpiresAt)
	}
	if other := claim(t, s, "node-2", 10, time.Minute); len(other) != 0 {
		t.Fatalf("another node claimed %v under the enqueue's lease", ids(other))
	}
	if b := readBody(t, s, e.ID); string(b) != body {
		t.Errorf("stored body %q", b)
	}
	errs := complete(t, s, "node-1", queue.Result{MessageID: e.ID, Attempt: queue.Attempt{Number: c.Attempts},
		Recipients: []queue.RecipientResult{{Address: "a@x.test", Status: queue.RecipientDelivered, Code: 250},
			{Address: "b@x.test", Status: queue.RecipientDelivered, Code: 250}}})
	if errs[0] != nil {
		t.Fatalf("Complete of the leased message: %v", errs[0])
	}
	wantStatus(t, s, e.ID, queue.StatusDelivered)
}

// testLeasedLapses: should the accepting node die, its lease lapses and
// the message is claimed again: nothing is lost.
func testLeasedLapses(t *testing.T, s queue.Store) {
	e := enqueueLeased(t, s, newMsg("b@x.test"), "crashed", expired)
	c := claimOne(t, s, "survivor", e.ID, time.Minute)
	if c.Attempts != 2 || len(c.Recipients) != 1 {
		t.Errorf("reclaimed %+v, want attempt 2 with the recipient", c.Message)
	}
	errs := complete(t, s, "crashed", queue.Result{MessageID: e.ID, Attempt: queue.Attempt{Number: 1},
		Recipients: []queue.RecipientResult{{Address: "b@x.test", Status: queue.RecipientFailed}}})
	if !errors.Is(errs[0], queue.ErrLeaseLost) {
		t.Errorf("the dead node's late result: %v, want ErrLeaseLost", errs[0])
	}
}

// testLeasedNotLeased: scheduled mail, a repeated idempotency key and a
// large body are handled as an enqueue is.
func testLeasedNotLeased(t *testing.T, s queue.Store) {
	later := newMsg("b@x.test")
	later.SendAt = time.Now().Add(time.Hour)
	if e := enqueueLeased(t, s, later, "n", time.Minute); e.Claimed != nil || e.Body != nil {
		t.Errorf("scheduled mail was leased: %+v", e.Claimed)
	} else {
		wantStatus(t, s, e.ID, queue.StatusQueued)
	}
	keyed := newMsg("c@x.test")
	keyed.IdempotencyKey = "leased-key"
	first := enqueueLeased(t, s, keyed, "n", time.Minute)
	keyed.Body = strings.NewReader("again")
	again := enqueueLeased(t, s, keyed, "n", time.Minute)
	if first.Claimed == nil || again.ID != first.ID || again.Claimed != nil {
		t.Errorf("repeated key: first claimed %v, again %s claimed %v", first.Claimed != nil, again.ID, again.Claimed)
	}
	big := newMsg("d@x.test")
	big.Body = &pattern{n: 1 << 20}
	e := enqueueLeased(t, s, big, "n", time.Minute)
	if e.Claimed == nil || e.Body != nil || e.Claimed.Size != 1<<20 {
		t.Fatalf("large body: claimed %v, %d body bytes in memory", e.Claimed, len(e.Body))
	}
	rc, err := s.OpenBody(context.Background(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if same, err := sameStream(rc, &pattern{n: 1 << 20}); err != nil || !same {
		t.Errorf("large leased body differs (%v)", err)
	}
	if _, err := s.EnqueueLeased(context.Background(), newMsg("e@x.test"), "", time.Minute); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("EnqueueLeased without an owner: %v, want ErrInvalid", err)
	}
}

// testCompleteBatch: one Complete records many results, each with its own
// outcome, and leaves the others' lost leases alone.
func testCompleteBatch(t *testing.T, s queue.Store) {
	// More than a driver's longest list of rows (256 on SQLite), and not
	// a power of two: the batch is split, and its last part padded.
	const n = 300
	for i := range n {
		enqueue(t, s, newMsg(fmt.Sprintf("a%d@x.test", i), fmt.Sprintf("b%d@x.test", i)))
	}
	c := claim(t, s, "w", n, time.Minute)
	if len(c) != n {
		t.Fatalf("claimed %d, want %d", len(c), n)
	}
	var results []queue.Result
	for i, m := range c {
		st := []queue.RecipientStatus{queue.RecipientDelivered, queue.RecipientDeferred, queue.RecipientFailed}[i%3]
		results = append(results, queue.Result{MessageID: m.ID, NextAttemptAt: time.Now().Add(time.Hour),
			Attempt: queue.Attempt{Number: m.Attempts, Route: "r", Reply: fmt.Sprint("reply ", i)},
			Recipients: []queue.RecipientResult{{Address: m.Recipients[0].Address, Status: st, Code: 200 + i},
				{Address: m.Recipients[1].Address, Status: queue.RecipientDelivered, Code: 250}}})
	}
	results = append(results, results[0]) // a second result for one lease
	errs := complete(t, s, "w", results...)
	for i, err := range errs[:n] {
		if err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
	}
	if !errors.Is(errs[n], queue.ErrLeaseLost) {
		t.Errorf("second result for one lease: %v, want ErrLeaseLost", errs[n])
	}
	want := []queue.Status{queue.StatusDelivered, queue.StatusDeferred, queue.StatusPartial}
	for i, m := range c {
		got := wantStatus(t, s, m.ID, want[i%3])
		if r := recipient(t, got, m.Recipients[0].Address); r.Code != 200+i || r.Attempts != 1 {
			t.Errorf("message %d recipient %+v, want code %d after 1 attempt", i, r, 200+i)
		}
		as, err := s.Attempts(context.Background(), m.ID)
		if err != nil || len(as) != 1 || as[0].Reply != fmt.Sprint("reply ", i) || as[0].Number != 1 {
			t.Errorf("message %d attempts %+v %v", i, as, err)
		}
	}
}

// testTranscripts: by default a successful attempt keeps its summary and
// drops its transcript; a failed one, or one that asked, keeps it.
func testTranscripts(t *testing.T, s queue.Store) {
	const tr = "S: 220 hi\r\nC: EHLO x\r\nS: 250 ok\r\n"
	cases := []struct {
		st   queue.RecipientStatus
		err  string
		keep bool
		want string
	}{
		{queue.RecipientDelivered, "", false, ""},
		{queue.RecipientDelivered, "", true, tr},
		{queue.RecipientDeferred, "", false, tr},
		{queue.RecipientFailed, "", false, tr},
		{queue.RecipientDelivered, "connection reset", false, tr},
	}
	for i, tc := range cases {
		id := enqueue(t, s, newMsg("b@x.test"))
		c := claimOne(t, s, "w", id, time.Minute)
		complete(t, s, "w", queue.Result{MessageID: id, NextAttemptAt: time.Now().Add(time.Hour),
			Recipients: []queue.RecipientResult{{Address: "b@x.test", Status: tc.st, Code: 250}},
			Attempt: queue.Attempt{Number: c.Attempts, Route: "relay:r:587", Host: "r:587", Reply: "250 2.0.0 queued",
				Error: tc.err, Transcript: tr, KeepTranscript: tc.keep}})
		as, err := s.Attempts(context.Background(), id)
		if err != nil || len(as) != 1 {
			t.Fatalf("case %d: attempts %v %v", i, as, err)
		}
		a := as[0]
		if a.Transcript != tc.want || a.Route != "relay:r:587" || a.Host != "r:587" || a.Reply != "250 2.0.0 queued" {
			t.Errorf("case %d (%s, error %q, keep %v): attempt %+v, want transcript %q and the summary", i, tc.st, tc.err, tc.keep, a, tc.want)
		}
	}
}
