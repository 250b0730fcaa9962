package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/submission"
	"github.com/outbox-mail/outbox/webhook"
)

// What an operator watches beside the mail itself: which build runs, how
// long the oldest message has waited, the webhook backlog and failures,
// and what the submission listener refuses.

// operatorMetrics are the counters the daemon's components report to.
type operatorMetrics struct {
	rejections   *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	posts        *prometheus.CounterVec
}

func newOperatorMetrics(reg *prometheus.Registry, store queue.Counter) *operatorMetrics {
	o := &operatorMetrics{
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbox_submission_rejections_total",
			Help: "Connections, commands and messages the SMTP submission listener refused, by reason.",
		}, []string{"reason"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbox_submission_auth_failures_total",
			Help: "Failed SMTP AUTH attempts, by reason.",
		}, []string{"reason"}),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outbox_webhook_posts_total",
			Help: "Webhook POSTs by result: delivered, failed (tried again), abandoned, interrupted (by shutdown).",
		}, []string{"result"}),
	}
	// Every label value exists from the start, at 0, so that rate() and
	// alerts see the first one.
	for _, r := range submission.RejectReasons {
		o.rejections.WithLabelValues(r)
	}
	for _, r := range submission.AuthFailureReasons {
		o.authFailures.WithLabelValues(r)
	}
	for _, r := range webhook.PostResults {
		o.posts.WithLabelValues(r)
	}
	reg.MustRegister(o.rejections, o.authFailures, o.posts)
	if ins, ok := store.(queue.Insights); ok {
		reg.MustRegister(&oldestCollector{store: ins, now: time.Now})
	}
	if b, ok := store.(webhookBacklog); ok {
		reg.MustRegister(&backlogCollector{store: b})
	}
	return o
}

// bounded returns v if it is one of known, else "other": a label never
// takes a value from outside the set, whatever a caller passes.
func bounded(v string, known []string) string {
	if slices.Contains(known, v) {
		return v
	}
	return "other"
}

// SubmissionRejected counts a refusal of the SMTP listener; plug it into
// submission.Config.OnReject.
func (m *Metrics) SubmissionRejected(reason string) {
	m.ops.rejections.WithLabelValues(bounded(reason, submission.RejectReasons)).Inc()
}

// SubmissionAuthFailed counts a failed SMTP AUTH; plug it into
// submission.Config.OnAuthFailure.
func (m *Metrics) SubmissionAuthFailed(reason string) {
	m.ops.authFailures.WithLabelValues(bounded(reason, submission.AuthFailureReasons)).Inc()
}

// WebhookPosted counts a webhook POST's result; plug it into
// webhook.Config.OnPost.
func (m *Metrics) WebhookPosted(result string) {
	m.ops.posts.WithLabelValues(bounded(result, webhook.PostResults)).Inc()
}

// BuildInfo exports outbox_build_info{version,commit,goversion} 1, as
// 'outbox version' reports them.
func (m *Metrics) BuildInfo(version, commit, goVersion string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "outbox_build_info",
		Help:        "The running build: its version, commit and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": goVersion},
	})
	g.Set(1)
	m.reg.MustRegister(g)
}

var oldestDesc = prometheus.NewDesc("outbox_queue_oldest_waiting_seconds",
	"Age of the oldest message not yet final (queued, sending or deferred); 0 when none waits.", nil, nil)

// oldestCollector reads the oldest waiting message at each scrape.
type oldestCollector struct {
	store queue.Insights
	now   func() time.Time
}

func (o *oldestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- oldestDesc }

func (o *oldestCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := o.store.OldestWaiting(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(oldestDesc, err)
		return
	}
	age := 0.0
	if m != nil {
		age = max(0, o.now().Sub(m.CreatedAt).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}

// webhookBacklog is implemented by the stores here (queue/sqlite,
// queue/postgres).
type webhookBacklog interface {
	WebhookBacklog(ctx context.Context) (waiting, abandoned int64, err error)
}

var backlogDesc = prometheus.NewDesc("outbox_webhook_events",
	"Webhook events in the store: waiting (to be posted, or being posted) and abandoned (given up, kept until purged).",
	[]string{"state"}, nil)

// backlogCollector reads the webhook backlog at each scrape.
type backlogCollector struct{ store webhookBacklog }

func (b *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc }

func (b *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waiting, abandoned, err := b.store.WebhookBacklog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(waiting), "waiting")
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(abandoned), "abandoned")
}
