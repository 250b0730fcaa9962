package delivery

import (
	"context"
	"io"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// Store is what the engine needs of a queue store: the lease holder's
// methods. Every queue.Store has them.
type Store interface {
	Claim(ctx context.Context, owner string, limit int, lease time.Duration) ([]queue.Claimed, error)
	Renew(ctx context.Context, owner string, ids []string, lease time.Duration) error
	Complete(ctx context.Context, owner string, results []queue.Result) ([]error, error)
	Release(ctx context.Context, owner string, ids []string) error
	NextDue(ctx context.Context) (t time.Time, ok bool, err error)
	OpenBody(ctx context.Context, id string) (io.ReadCloser, error)
}
