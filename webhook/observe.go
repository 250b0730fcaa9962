package webhook

// Results Config.OnPost reports, a closed set fit for a metric label.
const (
	PostDelivered   = "delivered"   // the endpoint answered 2xx
	PostFailed      = "failed"      // it did not; the event is tried again
	PostAbandoned   = "abandoned"   // given up: too many failures, too old, or the endpoint is gone
	PostInterrupted = "interrupted" // cut short by shutdown; due again at the next start
)

// PostResults lists every result OnPost may report.
var PostResults = []string{PostDelivered, PostFailed, PostAbandoned, PostInterrupted}

func (d *Dispatcher) posted(result string) {
	if f := d.cfg.OnPost; f != nil {
		f(result)
	}
}
