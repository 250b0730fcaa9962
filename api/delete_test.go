package api

import (
	"net/http"
	"testing"

	"github.com/outbox-mail/outbox/queue"
)

func TestDeleteMessage(t *testing.T) {
	e := setup(t, Config{}, false)
	id := e.send(simple())
	if r := e.do("DELETE", "/v1/messages/"+id, nil); r.Status != http.StatusConflict {
		t.Fatalf("DELETE of a queued message: %d %s, want 409", r.Status, r.Body)
	}
	if r := e.do("POST", "/v1/messages/"+id+"/cancel", nil); r.Status != 200 {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	if r := e.do("DELETE", "/v1/messages/"+id, nil); r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("DELETE of a cancelled message: %d %s, want 204", r.Status, r.Body)
	}
	if r := e.do("DELETE", "/v1/messages/"+id, nil); r.Status != http.StatusNotFound || r.apiErr(t).Field != "id" {
		t.Fatalf("second DELETE: %d %s, want 404", r.Status, r.Body)
	}
	if r := e.do("PUT", "/v1/messages/"+id, nil); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD, DELETE" {
		t.Errorf("PUT: %d, Allow %q", r.Status, r.Header.Get("Allow"))
	}
}

// TestDeleteMessages: the bulk delete empties the final messages and
// leaves waiting mail; a filter it does not know is refused, not ignored.
func TestDeleteMessages(t *testing.T) {
	e := setup(t, Config{}, true)
	for range 3 {
		e.waitStatus(e.send(simple()), queue.StatusDelivered)
	}
	e.h.cfg.Client.Shutdown(t.Context()) // what comes next stays queued
	waiting := e.send(simple())
	for q, field := range map[string]string{"status=queued": "status", "stauts=delivered": "stauts",
		"before=yesterday": "before", "status=nonsense": "status"} {
		if r := e.do("DELETE", "/v1/messages?"+q, nil); r.Status != 400 || r.apiErr(t).Field != field {
			t.Errorf("DELETE /v1/messages?%s: %d %s, want 400 naming %s", q, r.Status, r.Body, field)
		}
	}
	if n := e.total(); n != 4 {
		t.Fatalf("refused deletes removed messages: %d left", n)
	}
	if r := e.do("DELETE", "/v1/messages?before=2000-01-01T00:00:00Z", nil); r.Status != 200 || string(r.Body) != "{\"deleted\":0}\n" {
		t.Errorf("DELETE before 2000: %d %s", r.Status, r.Body)
	}
	r := e.do("DELETE", "/v1/messages", nil)
	var d Deleted
	r.decode(t, &d)
	if r.Status != 200 || d.Deleted != 3 || e.total() != 1 {
		t.Fatalf("DELETE /v1/messages: %d %s, %d left", r.Status, r.Body, e.total())
	}
	wantStatusAPI(t, e, waiting, queue.StatusQueued)
}

func wantStatusAPI(t *testing.T, e *env, id string, want queue.Status) {
	t.Helper()
	if v := e.getView(id); v.Status != want {
		t.Errorf("message %s is %s, want %s", id, v.Status, want)
	}
}

func TestBulkRetryAndCancel(t *testing.T) {
	e := setup(t, Config{}, false)
	a := e.send(simple("a@x.test"))
	b := e.send(simple("b@y.test"))
	r := e.do("POST", "/v1/messages/retry?status=queued", nil)
	var rt Retried
	r.decode(t, &rt)
	if r.Status != 200 || rt.Retried != 2 {
		t.Errorf("bulk retry: %d %s", r.Status, r.Body)
	}
	for q, field := range map[string]string{"": "", "status=delivered": "status", "include_failed=true": "include_failed",
		"to=a%0Ab": "to", "before=never": "before"} {
		if r := e.do("POST", "/v1/messages/cancel?"+q, nil); r.Status != 400 || r.apiErr(t).Field != field {
			t.Errorf("POST /v1/messages/cancel?%s: %d %s, want 400 naming %q", q, r.Status, r.Body, field)
		}
	}
	wantStatusAPI(t, e, a, queue.StatusQueued)
	r = e.do("POST", "/v1/messages/cancel?to=%40x.test", nil)
	var c Cancelled
	r.decode(t, &c)
	if r.Status != 200 || c.Cancelled != 1 {
		t.Errorf("bulk cancel: %d %s", r.Status, r.Body)
	}
	wantStatusAPI(t, e, a, queue.StatusCancelled)
	wantStatusAPI(t, e, b, queue.StatusQueued)
	if r := e.do("POST", "/v1/messages/retry?route=relay", nil); r.Status != 200 || string(r.Body) != "{\"retried\":0}\n" {
		t.Errorf("bulk retry of a route nothing went through: %d %s", r.Status, r.Body)
	}
}
