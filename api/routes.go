package api

import (
	"net/http"
	"slices"
)

// routeMux is a ServeMux that remembers the patterns registered on it, so
// that the OpenAPI check can tell a route nobody described.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern and records the pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers f for pattern and records the pattern.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// Routes returns the patterns the handler serves, as registered with
// net/http.ServeMux: "GET /v1/messages/{id}" for an operation, a pattern
// without a method for what only answers 405 (or 404) there. The OpenAPI
// check reads it; the daemon mounts the handler on the paths it lists.
func (h *Handler) Routes() []string { return slices.Clone(h.mux.patterns) }
