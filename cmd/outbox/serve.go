package main

import (
	"context"
	"io"
)

// runServe implements 'outbox serve'. (Being written.)
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usagef("serve: not implemented yet")
}
