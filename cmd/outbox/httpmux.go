package main

import "net/http"

// httpMux is the daemon's ServeMux. It remembers what it mounts where,
// so that the OpenAPI check can tell a route nobody described.
type httpMux struct {
	*http.ServeMux
	routes []httpRoute
}

// httpRoute is one pattern the daemon mounts, with its handler.
type httpRoute struct {
	pattern string
	handler http.Handler
}

func newHTTPMux() *httpMux { return &httpMux{ServeMux: http.NewServeMux()} }

// Handle mounts h at pattern and records it.
func (m *httpMux) Handle(pattern string, h http.Handler) {
	m.routes = append(m.routes, httpRoute{pattern, h})
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc mounts f at pattern and records it.
func (m *httpMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}
