package api

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/outbox-mail/outbox"
	"github.com/outbox-mail/outbox/queue"
)

// dsnField is a request's "dsn": the RFC 3461 parameters passed to
// servers that offer DSN. notify applies to every recipient.
type dsnField struct {
	Notify addrList `json:"notify"` // a keyword or a list of them
	Ret    string   `json:"ret"`
	EnvID  string   `json:"envid"`
}

// UnmarshalJSON refuses unknown keys, naming them with their path.
func (d *dsnField) UnmarshalJSON(b []byte) error {
	if err := checkKeys(b, d); err != nil {
		return err
	}
	type plain dsnField
	return json.NewDecoder(bytes.NewReader(b)).Decode((*plain)(d))
}

// maxEnvID is RFC 3461 §4.4's limit on ENVID.
const maxEnvID = 100

// deliverability applies the request's dsn, unsubscribe (given, or the
// template's setting) and ignore_suppressions to opts.
func (h *Handler) deliverability(req *sendRequest, opts *outbox.EnqueueOptions) *apiError {
	if d := req.DSN; d != nil {
		if e := d.apply(opts); e != nil {
			return e
		}
	}
	opts.IgnoreSuppressions = req.IgnoreSuppressions
	unsub := req.Template != nil && h.cfg.Templates != nil && h.cfg.Templates.Settings(req.Template.Name).Unsubscribe
	if req.Unsubscribe != nil {
		unsub = *req.Unsubscribe
	}
	if !unsub {
		return nil
	}
	if !h.cfg.Unsubscribe {
		return unprocessable("unsubscribe", "unsubscribe: this server makes no unsubscribe links: start it with --public-url (and a secret)")
	}
	for _, hv := range req.Headers {
		if n := strings.ToLower(hv[0]); n == "list-unsubscribe" || n == "list-unsubscribe-post" {
			return unprocessable(headerField(hv[0]), "%s: outbox writes this field itself for a message with unsubscribe: true", headerField(hv[0]))
		}
	}
	opts.Unsubscribe = true
	return nil
}

// apply checks the dsn object and sets its parameters in opts.
func (d *dsnField) apply(opts *outbox.EnqueueOptions) *apiError {
	switch r := queue.DSNReturn(strings.ToUpper(d.Ret)); r {
	case "", queue.DSNReturnFull, queue.DSNReturnHeaders:
		opts.DSN.Return = r
	default:
		return unprocessable("dsn.ret", "dsn.ret %q is not full or hdrs", d.Ret)
	}
	if len(d.EnvID) > maxEnvID || strings.ContainsFunc(d.EnvID, func(r rune) bool { return r < ' ' || r > '~' }) {
		return unprocessable("dsn.envid", "dsn.envid must be at most %d printable ASCII characters", maxEnvID)
	}
	opts.DSN.EnvID = d.EnvID
	never := false
	for i, n := range d.Notify {
		k := strings.ToUpper(n)
		switch k {
		case "SUCCESS", "FAILURE", "DELAY":
		case "NEVER":
			never = true
		default:
			return unprocessable("dsn.notify", "dsn.notify[%d] %q is not success, failure, delay or never", i, n)
		}
		opts.Notify = append(opts.Notify, k)
	}
	if never && len(opts.Notify) > 1 {
		return unprocessable("dsn.notify", "dsn.notify: never cannot be combined with other keywords (RFC 3461 §4.1)")
	}
	return nil
}
