// Package ids holds what the queue and its drivers know about message ids:
// they are UUIDv7, whose text starts with the creation time.
package ids

import (
	"fmt"
	"time"
)

// Floor is the smallest id a message created at t or later can have:
// ids are UUIDv7, whose text starts with the creation time in unix
// milliseconds as lowercase hex, so a primary-key range finds a time
// window without an index on the creation time.
func Floor(t time.Time) string {
	ms := uint64(t.UnixMilli())
	return fmt.Sprintf("%08x-%04x", ms>>16, ms&0xffff)
}
