package main

import "github.com/outbox-mail/outbox/metrics"

// newMetrics makes the daemon's metrics.
func (d *service) newMetrics() *metrics.Metrics {
	m := metrics.New(d.store)
	d.metrics = m
	return m
}
