package route

import (
	"sync"
	"time"
)

// cache keeps DNS answers until their TTL runs out, holding at most max
// entries: when full, expired entries go first, then arbitrary ones, so
// memory stays bounded whatever the number of domains.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[cacheKey]cacheEntry
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	a       answerRecords
	expires time.Time
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[cacheKey]cacheEntry)}
}

func (c *cache) get(k cacheKey, now time.Time) (answerRecords, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.expires) {
		return answerRecords{}, false
	}
	return e.a, true
}

func (c *cache) put(k cacheKey, a answerRecords, ttl time.Duration, now time.Time) {
	if ttl <= 0 || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[k] = cacheEntry{a: a, expires: now.Add(ttl)}
}

// evict frees about a tenth of the cache: expired entries, then others.
func (c *cache) evict(now time.Time) {
	n := max(c.max/10, 1)
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			n--
		}
	}
	for k := range c.entries {
		if n <= 0 {
			return
		}
		delete(c.entries, k)
		n--
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
