//go:build deps

// Package deps pins the modules the packages of this repository are being
// built on while they are under construction, so that go.mod lists them.
package deps

import (
	_ "github.com/emersion/go-message"
	_ "github.com/emersion/go-sasl"
	_ "github.com/emersion/go-smtp"
	_ "golang.org/x/net/idna"
	_ "modernc.org/sqlite"
)
