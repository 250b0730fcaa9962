package postgres

import (
	"testing"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/queuetest"
)

func TestStore(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store {
		dsn, _ := freshSchema(t)
		return openStore(t, dsn, Options{})
	})
}
