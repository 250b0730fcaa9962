package main

import (
	"context"
	"io"
)

// runSend implements 'outbox send'. (Being written for issue 2.)
func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return usagef("send: not implemented yet")
}
