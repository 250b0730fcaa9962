package webhook

import "fmt"

// endpoints is the endpoint list in force with the secret of each URL; a
// reload swaps it whole.
type endpoints struct {
	list    []Endpoint
	secrets map[string]string // URL → secret
}

func newEndpoints(list []Endpoint) *endpoints {
	e := &endpoints{list: append([]Endpoint(nil), list...), secrets: make(map[string]string, len(list))}
	for _, ep := range e.list {
		e.secrets[ep.URL] = ep.Secret
	}
	return e
}

// CheckEndpoints checks a list of endpoints as New and SetEndpoints do;
// the error names the endpoint by position and its URL without
// credentials or query.
func CheckEndpoints(list []Endpoint) error {
	seen := make(map[string]bool, len(list))
	for i := range list {
		e := list[i]
		if err := checkEndpoint(&e); err != nil {
			return fmt.Errorf("webhook: endpoint %d (%s): %w", i, redact(e.URL), err)
		}
		// The URL is what a stored event names, so it must find one secret.
		if seen[e.URL] {
			return fmt.Errorf("webhook: endpoint %d (%s): URL is listed twice", i, redact(e.URL))
		}
		seen[e.URL] = true
	}
	return nil
}

// SetEndpoints replaces the endpoints while the dispatcher runs (a
// daemon's configuration reload). Results from then on make events for
// the new list; a stored event for a URL still listed is sent with its
// current secret, one for a URL no longer listed is abandoned when it is
// next due, and a POST under way finishes. On an error nothing changes.
func (d *Dispatcher) SetEndpoints(list []Endpoint) error {
	if err := CheckEndpoints(list); err != nil {
		return err
	}
	d.eps.Store(newEndpoints(list))
	return nil
}

// Endpoints returns how many endpoints are in force.
func (d *Dispatcher) Endpoints() int { return len(d.eps.Load().list) }

// Redact shows a URL as logs may: without its password, and with any
// query (where receivers often put a token) replaced.
func Redact(url string) string { return redact(url) }
