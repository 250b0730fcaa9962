// Package metrics exposes outbox's Prometheus metrics: messages accepted by
// source, recipient outcomes and SMTP reply codes by route, delivery
// latency, and the queue depth by status, the age of the oldest waiting
// message and the webhook backlog, read from the store at scrape time so
// every node of a shared store reports the same; webhook POST results,
// submission refusals and AUTH failures by reason; the build.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/queue"
)

// Metrics holds the collectors of one outbox process.
type Metrics struct {
	reg      *prometheus.Registry
	accepted *prometheus.CounterVec
	outcomes *prometheus.CounterVec
	replies  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	attempt  *prometheus.HistogramVec
	ops      *operatorMetrics // operators.go
}

// New registers outbox's metrics, the Go runtime's and the process's in a
// registry of their own; store supplies the queue depth.
func New(store queue.Counter) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbox_messages_accepted_total",
			Help: "Messages durably accepted, by source (api, smtp, library).",
		}, []string{"source"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbox_recipients_total",
			Help: "Recipient outcomes of delivery attempts, by route and outcome (delivered, deferred, failed).",
		}, []string{"route", "outcome"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbox_smtp_replies_total",
			Help: "SMTP reply codes that decided a recipient's attempt, by route; code 0 means no reply (connection failure).",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outbox_delivery_latency_seconds",
			Help:    "Time from acceptance to a recipient's delivery, by route.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 12), // 5ms .. ~7h
		}, []string{"route"}),
		attempt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outbox_attempt_duration_seconds",
			Help:    "Duration of one delivery attempt (one SMTP transaction), by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.accepted, m.outcomes, m.replies, m.latency, m.attempt,
		&depthCollector{store: store},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.ops = newOperatorMetrics(m.reg, store)
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Accepted counts a durably accepted message by its source, a closed set
// (never a user's tag, which could explode the label's cardinality);
// plug it into outbox.Config.OnEnqueue.
func (m *Metrics) Accepted(_ string, source queue.Source) {
	if !source.Valid() {
		source = queue.SourceLibrary
	}
	m.accepted.WithLabelValues(string(source)).Inc()
}

// Result times one committed attempt, by the route of its first
// destination; plug it into outbox.Config.OnResult.
func (m *Metrics) Result(_ *queue.Claimed, r *queue.Result) {
	if d := r.Attempt.FinishedAt.Sub(r.Attempt.StartedAt); d >= 0 {
		m.attempt.WithLabelValues(RouteLabel(r.Attempt.Route)).Observe(d.Seconds())
	}
}

// Outcome counts one recipient's committed outcome by its route; plug it
// into outbox.Config.OnOutcome. The route label is the route's name from
// the configuration ("relay:host:port", "mx", "capture"), so its values
// are bounded; recipients, domains and tags never become labels.
func (m *Metrics) Outcome(o delivery.RecipientOutcome) {
	route := o.Route
	if route == "" {
		route = RouteLabel(o.Destination)
	}
	m.outcomes.WithLabelValues(route, string(o.Status)).Inc()
	m.replies.WithLabelValues(route, strconv.Itoa(o.Code)).Inc()
	if o.Status == queue.RecipientDelivered && o.Delay > 0 {
		m.latency.WithLabelValues(route).Observe(o.Delay.Seconds())
	}
}

// RouteLabel reduces an attempt's route ("mx:mx1.example.com, relay:…")
// to a bounded label: its first destination, with MX hosts as "mx".
func RouteLabel(route string) string {
	first, _, _ := strings.Cut(route, ", ")
	switch {
	case strings.HasPrefix(first, "mx:"), first == "dns":
		return "mx"
	case first == "":
		return "unknown"
	}
	return first
}

var depthDesc = prometheus.NewDesc("outbox_queue_messages",
	"Messages in the store by status.", []string{"status"}, nil)

// depthCollector reads the queue depth from the store at each scrape.
type depthCollector struct{ store queue.Counter }

func (d *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- depthDesc }

func (d *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := d.store.Counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	for _, s := range queue.Statuses {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
