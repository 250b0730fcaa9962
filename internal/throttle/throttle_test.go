package throttle

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a manual clock for deterministic tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(t *testing.T, cfg Config) (*Throttle, *clock, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if cfg.LogInterval == 0 {
		cfg.LogInterval = time.Hour // flushed by hand
	}
	th := New(cfg)
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	th.now = c.now
	return th, c, &logs
}

var (
	attacker = netip.MustParseAddr("192.0.2.7")
	neighbor = netip.MustParseAddr("192.0.2.8")
	elsewere = netip.MustParseAddr("198.51.100.1")
)

func TestDelaysGrowExponentiallyAndAreCapped(t *testing.T) {
	th, _, _ := newTest(t, Config{FreeFailures: 3, BaseDelay: time.Second, MaxDelay: 5 * time.Second, BlockAfter: 100})
	var waits []time.Duration
	for range 9 {
		w, err := th.Admit(attacker)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
		th.Failed(attacker, "smtp", "app")
	}
	// Nothing happens in time here (the clock stands still), so each wait
	// is the sum of the delays reserved before it: parallel attempts queue.
	want := []time.Duration{0, 0, 0, 0, 1, 3, 7, 12, 17}
	for i := range want {
		want[i] *= time.Second
	}
	if !slicesEqual(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
}

func slicesEqual(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Attempts admitted together count as the failures they will likely be:
// running guesses in parallel does not shorten the queue.
func TestParallelAttemptsQueue(t *testing.T) {
	th, _, _ := newTest(t, Config{FreeFailures: 2, BaseDelay: time.Second, MaxDelay: 8 * time.Second, BlockAfter: 100})
	th.Failed(attacker, "smtp", "app") // an entry exists: one failure on record
	var waits []time.Duration
	for range 5 {
		w, _ := th.Admit(attacker)
		waits = append(waits, w)
	}
	want := []time.Duration{0, 0, 1, 3, 7}
	for i := range want {
		want[i] *= time.Second
	}
	if !slicesEqual(waits, want) {
		t.Fatalf("parallel waits %v, want %v", waits, want)
	}
	// An address with nothing on record is never delayed, however many
	// attempts it makes at once (a pool of connections logging in).
	for range 20 {
		if w, _ := th.Admit(elsewere); w != 0 {
			t.Fatalf("clean address delayed %v", w)
		}
	}
}

func TestRefusedAfterManyFailuresThenForgiven(t *testing.T) {
	th, c, _ := newTest(t, Config{FreeFailures: 2, BlockAfter: 4, BlockFor: time.Minute, Forget: 10 * time.Minute})
	for range 4 {
		th.Failed(attacker, "smtp", "app")
	}
	_, err := th.Admit(attacker)
	var re *RefusedError
	if !errors.As(err, &re) || re.RetryAfter != time.Minute {
		t.Fatalf("Admit after 4 failures: %v, want refusal for 1m", err)
	}
	if d := th.Blocked(attacker); d != time.Minute {
		t.Fatalf("Blocked = %v", d)
	}
	c.add(61 * time.Second)
	if _, err := th.Admit(attacker); err != nil {
		t.Fatalf("still refused after the block: %v", err)
	}
	// Still on probation: one more failure blocks again.
	th.Failed(attacker, "smtp", "app")
	if th.Blocked(attacker) == 0 {
		t.Fatal("a failure right after the block did not block again")
	}
	c.add(time.Hour)
	if w, err := th.Admit(attacker); w != 0 || err != nil {
		t.Fatalf("after Forget: wait %v, err %v", w, err)
	}
}

func TestOtherAddressesAreNotSlowed(t *testing.T) {
	th, _, _ := newTest(t, Config{})
	for range DefaultBlockAfter {
		th.Failed(attacker, "smtp", "app")
	}
	if th.Blocked(attacker) == 0 {
		t.Fatal("attacker not blocked")
	}
	// A neighbour in the same /24 is untouched until the network as a
	// whole exceeds its (larger) allowance, and an address elsewhere is
	// untouched whatever the user.
	for _, ip := range []netip.Addr{neighbor, elsewere} {
		if w, err := th.Admit(ip); w != 0 || err != nil {
			t.Errorf("Admit(%v) = %v, %v; want no delay", ip, w, err)
		}
	}
}

func TestNetworkAllowance(t *testing.T) {
	th, _, _ := newTest(t, Config{FreeFailures: 2, BlockAfter: 4, NetworkFactor: 2})
	// Two addresses of 192.0.2.0/24 each stay under their own limit but
	// together reach the network's block (8).
	for i := range 8 {
		ip := attacker
		if i%2 == 1 {
			ip = netip.MustParseAddr("192.0.2.9")
		}
		if th.Blocked(ip) > 0 {
			break
		}
		th.Failed(ip, "smtp", "")
	}
	if th.Blocked(neighbor) == 0 {
		t.Fatal("the /24 is not blocked after 8 failures from it")
	}
	if th.Blocked(elsewere) != 0 {
		t.Fatal("another network is blocked")
	}
}

func TestIPv6KeysAreThe64(t *testing.T) {
	th, _, _ := newTest(t, Config{FreeFailures: 1, BlockAfter: 3})
	for i := range 3 {
		ip := netip.MustParseAddr("2001:db8:1:2::" + string(rune('1'+i)))
		th.Failed(ip, "api", "")
	}
	if th.Blocked(netip.MustParseAddr("2001:db8:1:2:ffff::1")) == 0 {
		t.Fatal("an address in the same /64 is not blocked")
	}
	if th.Blocked(netip.MustParseAddr("2001:db8:1:3::1")) != 0 {
		t.Fatal("another /64 is blocked")
	}
	// IPv4-mapped IPv6 is the IPv4 address.
	th.Failed(netip.MustParseAddr("::ffff:203.0.113.5"), "api", "")
	th.Failed(netip.MustParseAddr("203.0.113.5"), "api", "")
	th.Failed(netip.MustParseAddr("203.0.113.5"), "api", "")
	if th.Blocked(netip.MustParseAddr("203.0.113.5")) == 0 {
		t.Fatal("mapped and plain IPv4 are counted apart")
	}
}

func TestUserFailuresDelayOnlyWrongAnswers(t *testing.T) {
	th, _, _ := newTest(t, Config{UserFreeFailures: 2, BaseDelay: time.Second, MaxDelay: 4 * time.Second})
	// A distributed attack on "app": each address fails once.
	var replies []time.Duration
	for i := range 5 {
		ip := netip.AddrFrom4([4]byte{10, byte(i), 0, 1})
		replies = append(replies, th.Failed(ip, "smtp", "app"))
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second}
	if !slicesEqual(replies, want) {
		t.Fatalf("failure replies delayed %v, want %v", replies, want)
	}
	// The right password from a fresh address is admitted at once.
	if w, err := th.Admit(elsewere); w != 0 || err != nil {
		t.Fatalf("Admit from a clean address during the attack: %v, %v", w, err)
	}
}

func TestOneSummaryLinePerAddress(t *testing.T) {
	th, _, logs := newTest(t, Config{})
	for range 50 {
		th.Failed(attacker, "smtp", "app")
	}
	th.Failed(attacker, "api", "")
	th.Failed(attacker, "smtp", "x\ninjected=1")
	th.Failed(elsewere, "dashboard", "")
	th.Admit(neighbor)
	th.Succeeded(neighbor, "app")
	th.Flush()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2 (one per failing address):\n%s", len(lines), logs)
	}
	var line string
	for _, l := range lines {
		if strings.Contains(l, "remote=192.0.2.7") {
			line = l
		}
	}
	for _, want := range []string{"failures=52", "via=smtp,api", `users="app,x?injected=1"`} {
		if !strings.Contains(line, want) {
			t.Errorf("summary %q lacks %q", line, want)
		}
	}
	logs.Reset()
	th.Flush()
	if logs.Len() != 0 {
		t.Errorf("a second flush logged again: %s", logs)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	th, _, _ := newTest(t, Config{MaxEntries: 100})
	for i := range 10_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		th.Failed(ip, "smtp", "user"+string(rune('a'+i%26))+string(rune(i)))
	}
	th.mu.Lock()
	n := len(th.keys) + len(th.users) + len(th.summary)
	th.mu.Unlock()
	if n > 300 {
		t.Fatalf("%d entries kept with MaxEntries 100", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	th, _, _ := newTest(t, Config{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(g)})
			for range 200 {
				th.Admit(ip)
				th.Failed(ip, "smtp", "u")
				th.Succeeded(ip, "u")
			}
		}()
	}
	wg.Wait()
}
