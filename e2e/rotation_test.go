package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHSSecretRotationAcrossRollingRestarts runs the HS* secret rotation
// of docs/deployment.md ("Rotating the HS* secret") on two instances
// behind a round-robin balancer, while a client keeps obtaining access
// tokens from one instance (refresh grant) and using them on the other
// (GET /users/me). Each instance is drained, restarted with its new
// configuration and put back, one at a time, in both phases. Not one
// request may fail. The one-step rotation the procedure replaces is shown
// to fail at the end, so the cross-instance check is not vacuous.
func TestHSSecretRotationAcrossRollingRestarts(t *testing.T) {
	b := sqliteOnly(t)
	if pg, rd := os.Getenv("PERMISO_TEST_DATABASE_URL"), os.Getenv("PERMISO_TEST_REDIS_URL"); pg != "" && rd != "" {
		b = backend{name: "postgres+redis", provision: func(t *testing.T) map[string]string {
			return provisionPostgresRedis(t, pg, rd)
		}}
	}
	t.Logf("backend: %s", b.name)
	oldKey, newKey := randomHex(t, 32), randomHex(t, 32)
	base := b.env(t, map[string]string{
		"JWT_SECRET_KEY":     oldKey,
		"RATE_LIMIT_REFRESH": "1000000/minute",
		"RATE_LIMIT_API":     "1000000/minute",
	})
	with := func(extra map[string]string) map[string]string {
		env := maps.Clone(base)
		maps.Copy(env, extra)
		return env
	}
	phase1 := with(map[string]string{"JWT_NEXT_SECRET_KEYS": newKey})
	phase2 := with(map[string]string{"JWT_SECRET_KEY": newKey, "JWT_PREVIOUS_SECRET_KEYS": oldKey})

	lb := &balancer{}
	first := startServer(t, base)
	lb.add(first, "before")
	lb.add(startServer(t, base), "before")
	first.register(t, "rotor", "rotor@example.com", strongPassword)
	refresh := first.login(t, "rotor", strongPassword, "").RefreshToken

	c := &rotationClient{lb: lb, refresh: refresh, http: &http.Client{Timeout: 30 * time.Second}}
	done := make(chan struct{})
	go c.run(done)

	// waitCross waits until the client has completed n more requests pairs
	// that crossed instances with the current membership.
	waitCross := func(n int) {
		t.Helper()
		target := c.crossCount() + n
		for c.crossCount() < target {
			if c.stopped() {
				t.Fatalf("the client stopped: %s", c.report())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitCross(20)
	for _, step := range []struct {
		label string
		env   map[string]string
	}{
		{"phase1", phase1}, {"phase1", phase1},
		{"phase2", phase2}, {"phase2", phase2},
	} {
		// Drain the older instance, restart it with its new configuration
		// and put it back (what a rolling update behind nginx does).
		old := lb.removeOldest()
		old.stop(t)
		lb.add(startServer(t, step.env), step.label)
		waitCross(20)
	}
	c.finish()
	<-done

	if f := c.failures(); len(f) > 0 {
		t.Fatalf("%d of %d requests failed during the rotation; first ones:\n%s", len(f), c.total(), strings.Join(f[:min(len(f), 10)], "\n"))
	}
	// Every configuration pair that coexists during the restarts was
	// exercised in both directions (issued by, used on).
	for _, pair := range [][2]string{
		{"before", "phase1"}, {"phase1", "before"},
		{"phase1", "phase2"}, {"phase2", "phase1"},
		{"phase2", "phase2"},
	} {
		if c.pairs[pair] == 0 {
			t.Errorf("no token issued by a %s instance was used on a %s instance (pairs seen: %v)", pair[0], pair[1], c.pairs)
		}
	}
	// Both secrets signed: the kid of the access tokens changed.
	if len(c.kids) != 2 {
		t.Errorf("access tokens carried kids %v, want two (old and new secret)", c.kids)
	}
	t.Logf("%d request pairs, %d across instances, 0 failed", c.total(), c.crossCount())

	// The one-step rotation (a third secret signs at once, the old one
	// moved to JWT_PREVIOUS_SECRET_KEYS) on one instance: its tokens are
	// refused by the instance that has not heard of the new secret.
	third := randomHex(t, 32)
	oneStep := startServer(t, with(map[string]string{"JWT_SECRET_KEY": third, "JWT_PREVIOUS_SECRET_KEYS": newKey}))
	r := oneStep.refresh(t, c.refresh, "")
	tok := mustTokens(t, r, true)
	c.refresh = tok.RefreshToken
	other := lb.removeOldest()
	if got := other.get(t, apiPrefix+"/users/me", tok.AccessToken); got.Status != http.StatusUnauthorized {
		t.Errorf("one-step rotation: %s, want the 401 the two-phase procedure avoids", got)
	}
	expect(t, oneStep.get(t, apiPrefix+"/users/me", tok.AccessToken), http.StatusOK)
}

// balancer is a round-robin pool of instances, in the order they joined.
type balancer struct {
	mu      sync.RWMutex // held for reading by each client request pair
	servers []*Server
	labels  []string
	next    atomic.Int64
}

func (lb *balancer) add(s *Server, label string) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.servers = append(lb.servers, s)
	lb.labels = append(lb.labels, label)
}

// removeOldest takes the instance that joined first out of the pool once
// no request pair is in flight, and returns it.
func (lb *balancer) removeOldest() *Server {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	s := lb.servers[0]
	lb.servers, lb.labels = lb.servers[1:], lb.labels[1:]
	return s
}

// rotationClient obtains an access token from one instance with the
// refresh grant and uses it on the next one, over and over.
type rotationClient struct {
	lb      *balancer
	http    *http.Client
	refresh string

	mu     sync.Mutex
	n      int
	cross  int
	fails  []string
	stop   bool
	halted bool
	pairs  map[[2]string]int
	kids   map[string]bool
}

func (c *rotationClient) run(done chan<- struct{}) {
	defer close(done)
	c.mu.Lock()
	c.pairs, c.kids = map[[2]string]int{}, map[string]bool{}
	c.mu.Unlock()
	for {
		c.mu.Lock()
		stop := c.stop
		c.mu.Unlock()
		if stop {
			return
		}
		if err := c.once(); err != nil {
			c.mu.Lock()
			c.fails = append(c.fails, err.Error())
			// Without a refresh token the client cannot go on.
			if c.refresh == "" {
				c.halted = true
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
		}
	}
}

// once is one request pair: refresh on instance i, GET /users/me on
// instance i+1 (the same one while only one is in the pool).
func (c *rotationClient) once() error {
	c.lb.mu.RLock()
	defer c.lb.mu.RUnlock()
	n := len(c.lb.servers)
	if n == 0 {
		return nil
	}
	i := int(c.lb.next.Add(1)) % n
	from, to := c.lb.servers[i], c.lb.servers[(i+1)%n]
	fromLabel, toLabel := c.lb.labels[i], c.lb.labels[(i+1)%n]

	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.refresh}}
	resp, err := c.http.PostForm(from.URL+pathToken, form)
	if err != nil {
		c.refresh = ""
		return fmt.Errorf("refresh on %s (%s): %v", from.URL, fromLabel, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.refresh = "" // the old one may or may not have rotated: stop
		return fmt.Errorf("refresh on %s (%s): %d %s", from.URL, fromLabel, resp.StatusCode, bytes.TrimSpace(body))
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" || tr.RefreshToken == "" {
		c.refresh = ""
		return fmt.Errorf("refresh on %s (%s): bad response %s", from.URL, fromLabel, body)
	}
	c.refresh = tr.RefreshToken

	req, _ := http.NewRequest(http.MethodGet, to.URL+apiPrefix+"/users/me", nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	resp, err = c.http.Do(req)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.kids[jwtKID(tr.AccessToken)] = true
	if err != nil {
		return fmt.Errorf("token of %s (%s) on %s (%s): %v", from.URL, fromLabel, to.URL, toLabel, err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token of %s (%s) on %s (%s): %d %s", from.URL, fromLabel, to.URL, toLabel, resp.StatusCode, bytes.TrimSpace(body))
	}
	if from != to {
		c.cross++
		c.pairs[[2]string{fromLabel, toLabel}]++
	}
	return nil
}

func jwtKID(token string) string {
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "(undecodable header)"
	}
	var m struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &m) != nil {
		return "(undecodable header)"
	}
	return m.Kid
}

func (c *rotationClient) crossCount() int { c.mu.Lock(); defer c.mu.Unlock(); return c.cross }
func (c *rotationClient) total() int      { c.mu.Lock(); defer c.mu.Unlock(); return c.n }
func (c *rotationClient) stopped() bool   { c.mu.Lock(); defer c.mu.Unlock(); return c.halted }
func (c *rotationClient) finish()         { c.mu.Lock(); defer c.mu.Unlock(); c.stop = true }
func (c *rotationClient) failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.fails...)
}
func (c *rotationClient) report() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%d pairs, failures: %v", c.n, c.fails)
}
