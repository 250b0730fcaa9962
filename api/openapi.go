package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 description of the daemon's HTTP API. The
// test TestOpenAPIMatchesHandlers exercises every operation and status it
// lists against a real server and fails on any route it leaves out.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 description of the HTTP API, as served
// at GET /v1/openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// getOpenAPI serves the description; it needs no token, since it says
// nothing that is not in the README.
func (h *Handler) getOpenAPI(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-cache")
	w.Write(openAPI)
}
