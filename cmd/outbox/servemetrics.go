package main

import "github.com/outbox-mail/outbox/metrics"

// newMetrics makes the daemon's metrics, with the build 'outbox version'
// reports as outbox_build_info.
func (d *service) newMetrics() *metrics.Metrics {
	m := metrics.New(d.store)
	b := readBuildInfo()
	m.BuildInfo(b.Version, b.Commit, b.GoVersion)
	d.metrics = m
	return m
}
