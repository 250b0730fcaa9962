package main

import (
	"context"
	"io"
)

// runQueue implements 'outbox queue'. (Being written.)
func runQueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usagef("queue: not implemented yet")
}
