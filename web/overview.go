package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// Chart geometry: one bucket per minute over the last three hours, each
// bucket chartStep SVG units wide.
const (
	chartWindow  = 3 * time.Hour
	chartBucket  = time.Minute
	chartStep    = 4
	chartHeight  = 120
	healthWindow = time.Hour
)

// statusOrder is how statuses are listed everywhere.
var statusOrder = []queue.Status{queue.StatusQueued, queue.StatusSending, queue.StatusDeferred,
	queue.StatusDelivered, queue.StatusPartial, queue.StatusFailed, queue.StatusCancelled}

// overviewData is the overview's live region.
type overviewData struct {
	Counts  []statusCount
	Total   int64
	Waiting int64
	// HasInsights is false when the store cannot answer the panels below.
	HasInsights bool
	Depth       chart
	Flow        chart
	Oldest      *queue.Message
	Routes      []routeStat
	Updated     time.Time
}

type statusCount struct {
	Status queue.Status
	N      int64
}

// chart is a server-rendered SVG chart: a line (Points) and/or bars.
type chart struct {
	Width, Height int
	Points        string
	Bars          []bar
	Max           int64
	Sum, Sum2     int64
	From, To      time.Time
}

// bar is one bucket's bars: delivered stacked on failed, in SVG units.
type bar struct {
	X, OKY, OKH, BadY, BadH int
	Label                   string
}

type routeStat struct {
	Route              string
	Attempts, Failures int64
	Alarm              bool
}

func (h *handler) overview(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := h.overviewData(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "overview", &view{Title: "Overview", Nav: "overview", Data: d})
}

func (h *handler) overviewLive(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := h.overviewData(r.Context())
	if err != nil {
		h.log.Error("web: overview", "err", err)
		http.Error(w, "The queue could not be read.", http.StatusInternalServerError)
		return
	}
	h.renderFragment(w, "overview", "live", &view{Data: d, CSRF: s.csrf})
}

// overviewData reads the status counts and, when the store has them, the
// insights, all at once: each query reads its own index on the store's
// read pool, so the overview costs about the slowest of them.
func (h *handler) overviewData(ctx context.Context) (*overviewData, error) {
	var counts map[queue.Status]int64
	var ins *insights
	var errC, errI error
	var wg sync.WaitGroup
	wg.Go(func() { counts, errC = h.store.Counts(ctx) })
	if h.insights != nil {
		wg.Go(func() { ins, errI = h.cache.get(ctx, h.cfg.InsightsTTL, h.loadInsights) })
	}
	wg.Wait()
	if errC != nil {
		return nil, errC
	}
	if errI != nil {
		return nil, errI
	}
	d := &overviewData{Updated: time.Now()}
	for _, st := range statusOrder {
		n := counts[st]
		d.Counts = append(d.Counts, statusCount{st, n})
		d.Total += n
		if !st.Final() {
			d.Waiting += n
		}
	}
	if ins != nil {
		d.HasInsights = true
		d.Depth = depthChart(ins.act, d.Waiting, ins.since)
		d.Flow = flowChart(ins.act, ins.since)
		d.Routes, d.Oldest = ins.routes, ins.oldest
	}
	return d, nil
}

// insights are the results of the store's queue.Insights queries at one moment.
type insights struct {
	at     time.Time
	since  time.Time
	act    map[string][]int64
	routes []routeStat
	oldest *queue.Message
}

// insightsCache keeps the last insights for a short while; concurrent
// requests wait for one load instead of each running the queries.
type insightsCache struct {
	mu   sync.Mutex
	last *insights
}

func (c *insightsCache) get(ctx context.Context, ttl time.Duration, load func(context.Context) (*insights, error)) (*insights, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && time.Since(c.last.at) < ttl {
		return c.last, nil
	}
	ins, err := load(ctx)
	if err != nil {
		return nil, err
	}
	c.last = ins
	return ins, nil
}

// loadInsights runs the three insight queries concurrently.
func (h *handler) loadInsights(ctx context.Context) (*insights, error) {
	now := time.Now()
	ins := &insights{at: now, since: now.Add(-chartWindow).Truncate(chartBucket)}
	var attempts, failures map[string]int64
	var errs [3]error
	var wg sync.WaitGroup
	wg.Go(func() { ins.act, errs[0] = h.insights.Activity(ctx, ins.since, chartBucket) })
	wg.Go(func() { attempts, failures, errs[1] = h.insights.RouteHealth(ctx, now.Add(-healthWindow)) })
	wg.Go(func() { ins.oldest, errs[2] = h.insights.OldestWaiting(ctx) })
	wg.Wait()
	for i, what := range []string{"activity", "route health", "oldest waiting"} {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s: %w", what, errs[i])
		}
	}
	for route, n := range attempts {
		bad := failures[route]
		ins.routes = append(ins.routes, routeStat{Route: route, Attempts: n, Failures: bad, Alarm: bad*5 > n})
	}
	sort.Slice(ins.routes, func(i, j int) bool { return ins.routes[i].Route < ins.routes[j].Route })
	return ins, nil
}

// depthChart reconstructs the queue depth at the end of each bucket by
// walking back from the depth now: a bucket's created messages were not yet
// waiting before it, and its finished ones still were.
func depthChart(act map[string][]int64, now int64, since time.Time) chart {
	created := act["created"]
	n := len(created)
	depth := make([]int64, n)
	cur := now
	for i := n - 1; i >= 0; i-- {
		depth[i] = max(cur, 0)
		cur -= created[i]
		for _, st := range []string{"delivered", "partial", "failed", "cancelled"} {
			cur += act[st][i]
		}
	}
	c := chart{Width: n * chartStep, Height: chartHeight, Max: 1, From: since, To: since.Add(time.Duration(n) * chartBucket)}
	for _, v := range depth {
		c.Max = max(c.Max, v)
	}
	var pts strings.Builder
	for i, v := range depth {
		y := chartHeight - int(v*(chartHeight-4)/c.Max)
		pts.WriteString(strconv.Itoa(i*chartStep+chartStep/2) + "," + strconv.Itoa(y) + " ")
	}
	c.Points = strings.TrimSpace(pts.String())
	c.Sum = now
	return c
}

// flowChart draws delivered (green, on top) over failed (red) per bucket.
func flowChart(act map[string][]int64, since time.Time) chart {
	ok, failed, partial := act["delivered"], act["failed"], act["partial"]
	n := len(ok)
	c := chart{Width: n * chartStep, Height: chartHeight, Max: 1, From: since, To: since.Add(time.Duration(n) * chartBucket)}
	for i := range n {
		c.Max = max(c.Max, ok[i]+failed[i]+partial[i])
	}
	for i := range n {
		bad := failed[i] + partial[i]
		c.Sum += ok[i]
		c.Sum2 += bad
		if ok[i]+bad == 0 {
			continue
		}
		badH := int(bad * (chartHeight - 4) / c.Max)
		okH := int(ok[i] * (chartHeight - 4) / c.Max)
		c.Bars = append(c.Bars, bar{X: i * chartStep, BadY: chartHeight - badH, BadH: badH,
			OKY: chartHeight - badH - okH, OKH: okH,
			Label: fmt.Sprintf("%s: %d delivered, %d failed", since.Add(time.Duration(i)*chartBucket).UTC().Format("15:04"), ok[i], bad)})
	}
	return c
}
