package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
)

// apiError is an error answered to the client as JSON.
type apiError struct {
	Status int    `json:"-"`
	Msg    string `json:"error"`
	Field  string `json:"field,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header when set.
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Msg }

// errInternal is the only thing a client learns of a server-side failure;
// the details go to the log.
var errInternal = &apiError{Status: http.StatusInternalServerError,
	Msg: "The server failed to handle the request; it has been logged."}

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Field: field, Msg: fieldSentence(field, fmt.Sprintf(format, args...))}
}

func unprocessable(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Field: field, Msg: fieldSentence(field, fmt.Sprintf(format, args...))}
}

// fieldSentence is sentence, except that a message opening with the name
// of its field keeps that name as the client spells it.
func fieldSentence(field, s string) string {
	rest, ok := strings.CutPrefix(s, field)
	if field == "" || !ok || rest != "" && strings.IndexByte(":. [", rest[0]) < 0 {
		return sentence(s)
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// sentence makes s start with a capital and end with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	if c := s[0]; c >= 'a' && c <= 'z' {
		s = string(c-'a'+'A') + s[1:]
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may have gone; nothing to do about it
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, e)
}

// tooLarge reports whether err comes from reading past the body limit.
func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func tooLargeError(limit int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge,
		Msg: fmt.Sprintf("The request body is larger than the limit of %d bytes.", limit)}
}

// decodeError explains a failure to decode the JSON request.
func decodeError(err error, limit int64) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var own *syntaxError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &own):
		return badRequest("", "malformed JSON at byte %d: %s", own.off, own.msg)
	case tooLarge(err):
		return tooLargeError(limit)
	case errors.Is(err, io.EOF):
		return badRequest("", "the request body is empty; a JSON object was expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the JSON body ends before the object is complete")
	case errors.As(err, &syn):
		return badRequest("", "malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ) && typ.Value == unknownField:
		field := fieldPath(typ.Field)
		return badRequest(field, "unknown field %q", field)
	case errors.As(err, &typ):
		field := fieldPath(typ.Field)
		return badRequest(field, "%s must be %s, not a JSON %s", orBody(field), jsonKind(typ.Type.String()), typ.Value)
	}
	// DisallowUnknownFields has no typed error; its message is stable
	// ("json: unknown field \"name\"").
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return badRequest(name, "unknown field %q", name)
	}
	return badRequest("", "the request body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// fieldPath tidies encoding/json's dotted path: array elements that name
// their index come out as "attachments.[1].inline".
func fieldPath(f string) string { return strings.ReplaceAll(f, ".[", "[") }

func orBody(field string) string {
	if field == "" {
		return "the body"
	}
	return field
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case goType == "[]string":
		return "an array of strings"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "api."), strings.HasPrefix(goType, "struct"):
		return "an object"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "of type " + goType
}

// enqueueError maps an error from the outbox client to a response: field
// errors found by message validation are the client's; anything else is
// the server's and is logged, not shown.
func (h *Handler) enqueueError(err error, limit int64, fields func(string) string) *apiError {
	var fe *message.FieldError
	switch {
	case tooLarge(err):
		return tooLargeError(limit)
	case errors.As(err, &fe):
		field := fields(fe.Field)
		return unprocessable(field, "%s: %v", field, fe.Err)
	case errors.Is(err, queue.ErrInvalid):
		return unprocessable("", "%s", strings.TrimPrefix(err.Error(), "queue: "))
	case errors.Is(err, context.Canceled):
		// The client went away mid-request; the answer goes nowhere.
		return &apiError{Status: 499, Msg: "The request was cancelled."}
	}
	// A failed enqueue is a commit that did not happen: readiness hears of
	// it at once rather than at the next probe.
	if h.cfg.Health != nil {
		h.cfg.Health.StoreFailed(err)
	}
	return h.storeError(err)
}

// storeRetryAfter is the Retry-After, in seconds, of a store failure.
const storeRetryAfter = 5

// storeError answers a failure of the store without revealing it: the
// store's trouble is the server's and temporary (a full disk, a database
// restarting), so 503 with Retry-After, never 500.
func (h *Handler) storeError(err error) *apiError {
	h.log.Error("api: store failure", "err", err)
	return &apiError{Status: http.StatusServiceUnavailable, RetryAfter: storeRetryAfter,
		Msg: "The message store is unavailable; try again later."}
}
