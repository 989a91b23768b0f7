package oauth2_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testhash"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// withAbuse gives the service an in-process lockout (max attempts, 30
// minutes) and limiter on the env's fake clock.
func withAbuse(max int) envOption {
	return func(_ *oauth2.Config, d *oauth2.Deps) {
		d.Lockout = inprocess.NewLockout(max, 30*time.Minute, inprocess.WithNow(d.Now))
		d.Limiter = inprocess.NewLimiter(inprocess.WithNow(d.Now))
	}
}

const wrongPassword = "Wrong-Horse-9-battery"

// TestLockout: MAX_LOGIN_ATTEMPTS failures lock a username, known or not,
// with the same answers for both; no password is checked while locked;
// the lock does not slide and ends after LOCKOUT_DURATION (docs/abuse-resistance.md, "Lockout").
func TestLockout(t *testing.T) {
	e := newEnv(t, withAbuse(3))
	u := e.createUser("alice", goodPassword, permiso.RoleUser)
	start := e.clock.Now()

	var lockedErrs []*oauth2.Error
	for _, login := range []string{"alice", "ghost"} {
		for i := 1; i <= 3; i++ {
			_, err := e.token(formLogin(login, wrongPassword), "")
			wantOAuth(t, err, "invalid_grant", http.StatusBadRequest)
		}
		// Locked now: even the right password gets 423, without a
		// password check.
		checked := passwordsChecked(e)
		_, err := e.token(formLogin(login, goodPassword), "")
		oe := wantOAuth(t, err, "account_locked", http.StatusLocked)
		if oe.LockedUntil == nil || !oe.LockedUntil.Equal(start.Add(30*time.Minute)) {
			t.Errorf("%s: locked_until %v, want %v", login, oe.LockedUntil, start.Add(30*time.Minute))
		}
		if passwordsChecked(e) != checked || len(e.audit.find(oauth2.ActionLoginSuccess)) != 0 {
			t.Errorf("%s: a password was checked while locked", login)
		}
		lockedErrs = append(lockedErrs, oe)
	}
	// A locked unknown username is indistinguishable from a locked user.
	if a, g := lockedErrs[0], lockedErrs[1]; a.Description != g.Description || !a.LockedUntil.Equal(*g.LockedUntil) {
		t.Errorf("locked user %+v and locked unknown user %+v differ", a, g)
	}
	locks := e.audit.find(oauth2.ActionLoginLocked)
	if len(locks) != 2 {
		t.Fatalf("%d login.locked events, want 2 (one per lock)", len(locks))
	}
	if *locks[0].TargetID != u.ID.String() || *locks[1].TargetID != "ghost" {
		t.Errorf("login.locked targets %s, %s", *locks[0].TargetID, *locks[1].TargetID)
	}
	// The users table mirrors the lock.
	got, _ := e.db.GetUser(e.ctx, u.ID)
	if got.LockedUntil == nil || got.FailedLoginAttempts != 3 {
		t.Errorf("users mirror: locked_until %v, failed_login_attempts %d", got.LockedUntil, got.FailedLoginAttempts)
	}

	// The lock does not slide with further attempts; it ends on time.
	e.clock.Advance(29 * time.Minute)
	_, err := e.token(formLogin("alice", wrongPassword), "")
	wantOAuth(t, err, "account_locked", http.StatusLocked)
	e.clock.Advance(time.Minute)
	e.login("alice", goodPassword, "")
	got, _ = e.db.GetUser(e.ctx, u.ID)
	if got.LockedUntil != nil || got.FailedLoginAttempts != 0 {
		t.Errorf("users mirror after a successful login: %v, %d", got.LockedUntil, got.FailedLoginAttempts)
	}
}

// TestLockoutSuccessResets: a correct password resets the count; the
// username and the email of one account share a count.
func TestLockoutSuccessResets(t *testing.T) {
	e := newEnv(t, withAbuse(3))
	e.createUser("bob", goodPassword, permiso.RoleUser)
	for range 5 {
		for _, login := range []string{"bob", "BOB@example.com"} {
			_, err := e.token(formLogin(login, wrongPassword), "")
			wantOAuth(t, err, "invalid_grant", http.StatusBadRequest)
		}
		e.login("Bob", goodPassword, "")
	}
	// Two by username, one by email: locked.
	for _, login := range []string{"bob", "bob@example.com", "bob"} {
		_, err := e.token(formLogin(login, wrongPassword), "")
		wantOAuth(t, err, "invalid_grant", http.StatusBadRequest)
	}
	_, err := e.token(formLogin("bob@example.com", goodPassword), "")
	wantOAuth(t, err, "account_locked", http.StatusLocked)

	// Admin unlock (and password reset) lift it.
	if err := e.svc.Unlock(e.ctx, "BOB"); err != nil {
		t.Fatal(err)
	}
	if st, err := e.svc.LockoutStatus(e.ctx, "bob"); err != nil || st.Locked || st.Failures != 0 {
		t.Fatalf("after Unlock: %+v, %v", st, err)
	}
	e.login("bob", goodPassword, "")
	if n := len(e.audit.find(oauth2.ActionLoginUnlock)); n != 1 {
		t.Errorf("%d login.unlock events, want 1", n)
	}
}

// TestLockoutConcurrent: of many concurrent wrong passwords exactly
// MAX_LOGIN_ATTEMPTS are checked and answered invalid_grant; the others
// are refused at once without a check, as too many in flight (429) or as
// locked (423), and exactly one lock is recorded.
func TestLockoutConcurrent(t *testing.T) {
	e := newEnv(t, withAbuse(4))
	e.createUser("carol", goodPassword, permiso.RoleUser)
	const n = 40
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := e.token(formLogin("carol", wrongPassword), "")
			mu.Lock()
			defer mu.Unlock()
			codes[oauth2.AsError(err).Code]++
		})
	}
	wg.Wait()
	if codes["invalid_grant"] != 4 || codes["account_locked"]+codes["too_many_attempts"] != n-4 {
		t.Errorf("answers %v, want 4 invalid_grant and %d account_locked or too_many_attempts", codes, n-4)
	}
	if checked := passwordsChecked(e); checked != 4 {
		t.Errorf("%d passwords checked, want 4", checked)
	}
	if locks := e.audit.find(oauth2.ActionLoginLocked); len(locks) != 1 {
		t.Errorf("%d login.locked events, want 1", len(locks))
	}
	if n := len(e.audit.find(oauth2.ActionLoginTooManyAttempts)); n != codes["too_many_attempts"] {
		t.Errorf("%d login.too_many_attempts events for %d such answers", n, codes["too_many_attempts"])
	}
	if st, err := e.svc.LockoutStatus(e.ctx, "carol"); err != nil || !st.Locked || st.Failures != 4 || st.Pending != 0 {
		t.Errorf("after the race: %+v, %v; want locked with 4 failures, nothing in flight", st, err)
	}
}

// TestLockoutTooManyAttempts: while MAX_LOGIN_ATTEMPTS password checks for
// an account are in flight, another login, right or wrong password, is
// answered 429 too_many_attempts with Retry-After at once: no password is
// checked, no failure counted, nothing locked, and it is audited as its
// own action, not as login.failure. The change of password through
// CheckCurrentPassword gets the same refusal as ETOOMANYATTEMPTS. When the
// checks in flight end with the right password, nothing is left.
func TestLockoutTooManyAttempts(t *testing.T) {
	gh := testhash.NewGated(nil)
	e := newEnv(t, withAbuse(3), func(_ *oauth2.Config, d *oauth2.Deps) {
		gh.Hasher = d.Hasher
		d.Hasher = gh
	})
	u := e.createUser("frank", goodPassword, permiso.RoleUser)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := e.token(formLogin("frank", goodPassword), "")
			errs <- err
		}()
	}
	for range 3 {
		<-gh.Entered
	}
	for _, pw := range []string{goodPassword, wrongPassword} {
		_, err := e.token(formLogin("FRANK@example.com", pw), "")
		oe := wantOAuth(t, err, "too_many_attempts", http.StatusTooManyRequests)
		if oe.RetryAfter != permiso.LockoutRetryAfter || oe.LockedUntil != nil {
			t.Errorf("too_many_attempts: Retry-After %v, locked_until %v; want %v and none", oe.RetryAfter, oe.LockedUntil, permiso.LockoutRetryAfter)
		}
	}
	ok, err := e.svc.CheckCurrentPassword(e.ctx, u, goodPassword)
	if ok || permiso.ErrorCode(err) != permiso.ETOOMANYATTEMPTS {
		t.Errorf("CheckCurrentPassword with every place taken: %v, %v; want ETOOMANYATTEMPTS", ok, err)
	}
	if st, err := e.svc.LockoutStatus(e.ctx, "frank"); err != nil || st.Pending != 3 || st.Failures != 0 || st.Locked {
		t.Errorf("while 3 checks are in flight: %+v, %v", st, err)
	}
	close(gh.Release)
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("a login in flight with the right password: %v", err)
		}
	}
	if n := len(e.audit.find(oauth2.ActionLoginTooManyAttempts)); n != 3 {
		t.Errorf("%d login.too_many_attempts events, want 3", n)
	}
	if n, m := len(e.audit.find(oauth2.ActionLoginFailure)), len(e.audit.find(oauth2.ActionLoginLocked)); n != 0 || m != 0 {
		t.Errorf("%d login.failure and %d login.locked events, want none", n, m)
	}
	if st, err := e.svc.LockoutStatus(e.ctx, "frank"); err != nil || st != (permiso.LockoutState{}) {
		t.Errorf("after the logins: %+v, %v; want nothing left", st, err)
	}
}

// TestLockoutChangePassword: POST /auth/change-password counts toward the
// lockout and is refused while locked (docs/oauth.md).
func TestLockoutChangePassword(t *testing.T) {
	e := newEnv(t, withAbuse(2))
	e.createUser("dave", goodPassword, permiso.RoleUser)
	for range 2 {
		err := e.svc.ChangeExpiredPassword(e.ctx, "dave", wrongPassword, "New-Horse-9-battery!", testMeta)
		wantOAuth(t, err, "invalid_grant", http.StatusBadRequest)
	}
	err := e.svc.ChangeExpiredPassword(e.ctx, "dave", goodPassword, "New-Horse-9-battery!", testMeta)
	wantOAuth(t, err, "account_locked", http.StatusLocked)
	_, err = e.token(formLogin("dave", goodPassword), "")
	wantOAuth(t, err, "account_locked", http.StatusLocked)
}

// TestLockoutUnavailable: with the lockout store unreachable, logins fail
// closed with 503 and issue nothing (docs/abuse-resistance.md, "Failure policy").
func TestLockoutUnavailable(t *testing.T) {
	c := testwire.RedisDown(t)
	e := newEnv(t, func(_ *oauth2.Config, d *oauth2.Deps) {
		d.Lockout = redis.NewLockout(c, "permiso-test:down:", 5, time.Minute)
	})
	e.createUser("erin", goodPassword, permiso.RoleUser)
	resp, err := e.token(formLogin("erin", goodPassword), "")
	oe := wantOAuth(t, err, "temporarily_unavailable", http.StatusServiceUnavailable)
	if resp.AccessToken != "" || oe.RetryAfter <= 0 {
		t.Errorf("resp %+v, Retry-After %v", resp, oe.RetryAfter)
	}
	if n := len(e.audit.find(oauth2.ActionLoginSuccess)); n != 0 {
		t.Errorf("%d logins succeeded without the lockout check", n)
	}
}

// TestClientRateLimit: a service client's rate_limit_per_minute and
// rate_limit_per_hour are enforced on client credentials, atomically for
// both, and readable without counting (ClientRateLimits).
func TestClientRateLimit(t *testing.T) {
	e := newEnv(t, withAbuse(5))
	c, secret := e.createClient("svc-limited", func(c *permiso.ServiceClient) {
		c.RateLimitPerMinute, c.RateLimitPerHour = 3, 5
	}, "read:profile")
	form := url.Values{"grant_type": {"client_credentials"}}
	auth := basic(c.ClientID, secret)
	for i := range 3 {
		resp := e.mustToken(form, auth)
		if resp.RateLimit == nil || resp.RateLimit.Limit != 3 || resp.RateLimit.Remaining != 2-i {
			t.Fatalf("token %d: RateLimit %+v, want the minute limit with %d remaining", i+1, resp.RateLimit, 2-i)
		}
	}
	_, err := e.token(form, auth)
	oe := wantOAuth(t, err, "rate_limit_exceeded", http.StatusTooManyRequests)
	// A request counts for the window and at most one slot more
	// (docs/abuse-resistance.md).
	window := time.Minute + permiso.Limit{Count: 3, Period: time.Minute}.Slot()
	if oe.RetryAfter <= 0 || oe.RetryAfter > window || oe.RateLimit == nil || oe.RateLimit.Limit != 3 {
		t.Errorf("429: Retry-After %v, RateLimit %+v", oe.RetryAfter, oe.RateLimit)
	}
	minute, hour, err := e.svc.ClientRateLimits(e.ctx, c)
	if err != nil || minute.Remaining != 0 || minute.Limit != 3 || hour.Remaining != 2 || hour.Limit != 5 {
		t.Errorf("ClientRateLimits = %+v, %+v, %v; want minute 0/3 and hour 2/5 (the refused request not counted)", minute, hour, err)
	}
	e.clock.Advance(window)
	e.mustToken(form, auth)
	resp := e.mustToken(form, auth)
	if resp.RateLimit.Limit != 5 || resp.RateLimit.Remaining != 0 {
		t.Errorf("RateLimit %+v, want the hour limit exhausted (the tighter one)", resp.RateLimit)
	}
	_, err = e.token(form, auth)
	oe = wantOAuth(t, err, "rate_limit_exceeded", http.StatusTooManyRequests)
	if oe.RetryAfter < 58*time.Minute {
		t.Errorf("Retry-After %v, want about 59 minutes (the hour limit)", oe.RetryAfter)
	}
	if n := len(e.audit.find(oauth2.ActionRateLimited)); n != 2 {
		t.Errorf("%d client.rate_limited events, want 2", n)
	}
	// Another client has its own budget; a client with limits 0 has none.
	c2, s2 := e.createClient("svc-unlimited", func(c *permiso.ServiceClient) {
		c.RateLimitPerMinute, c.RateLimitPerHour = 0, 0
	}, "read:profile")
	for range 10 {
		if resp := e.mustToken(form, basic(c2.ClientID, s2)); resp.RateLimit != nil {
			t.Fatalf("unlimited client got RateLimit %+v", resp.RateLimit)
		}
	}
}

func TestClientRateLimitKeys(t *testing.T) {
	m, h := oauth2.ClientRateLimitKeys("svc-1")
	if m != "client:{svc-1}:minute" || h != "client:{svc-1}:hour" {
		t.Errorf("keys %q, %q", m, h)
	}
}

func TestTightest(t *testing.T) {
	a := permiso.LimitResult{Allowed: true, Limit: 10, Remaining: 5, Reset: time.Minute}
	b := permiso.LimitResult{Allowed: true, Limit: 100, Remaining: 3, Reset: time.Hour}
	r := permiso.LimitResult{Allowed: false, Limit: 100, RetryAfter: time.Minute}
	off := permiso.LimitResult{Allowed: true}
	// An all-or-nothing refusal (AllowAll) reports every limit refused
	// with the same RetryAfter: the one that is spent is shown, not the
	// minute limit with budget left (docs/abuse-resistance.md, "Response
	// headers").
	minuteLeft := permiso.LimitResult{Allowed: false, Limit: 1000, Remaining: 700, Reset: time.Minute, RetryAfter: time.Hour}
	hourSpent := permiso.LimitResult{Allowed: false, Limit: 300, Remaining: 0, Reset: time.Hour, RetryAfter: time.Hour}
	for _, tc := range []struct {
		in   []permiso.LimitResult
		want *permiso.LimitResult
	}{
		{nil, nil},
		{[]permiso.LimitResult{off}, nil},
		{[]permiso.LimitResult{a, b}, &b},
		{[]permiso.LimitResult{b, a, off}, &b},
		{[]permiso.LimitResult{a, r, b}, &r},
		{[]permiso.LimitResult{minuteLeft, hourSpent}, &hourSpent},
		{[]permiso.LimitResult{hourSpent, minuteLeft}, &hourSpent},
	} {
		got := oauth2.Tightest(tc.in...)
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("Tightest(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// passwordsChecked counts the password verifications the audit log shows:
// failures for a wrong password or an unknown user (a dummy hash), and
// successes.
func passwordsChecked(e *env) int {
	n := len(e.audit.find(oauth2.ActionLoginSuccess))
	for _, ev := range e.audit.find(oauth2.ActionLoginFailure) {
		if r := ev.Details["reason"]; r == "invalid_password" || r == "unknown_user" {
			n++
		}
	}
	return n
}

// busyHasher answers every verification "too many concurrent password
// checks" (EUNAVAILABLE, what argon2id.Hasher says when its slots stay
// full past MaxWait) while busy is set.
type busyHasher struct {
	oauth2.Hasher
	busy atomic.Bool
}

var errHasherBusy = permiso.Errorf(permiso.EUNAVAILABLE, "too many concurrent password checks; retry shortly")

func (h *busyHasher) Verify(ctx context.Context, password, encoded string) (bool, bool, error) {
	if h.busy.Load() {
		return false, false, errHasherBusy
	}
	return h.Hasher.Verify(ctx, password, encoded)
}

func (h *busyHasher) VerifyDummy(ctx context.Context, password string) error {
	if h.busy.Load() {
		return errHasherBusy
	}
	return h.Hasher.VerifyDummy(ctx, password)
}

// TestLockoutNotSpentWhenBusy: attempts turned away with 503 because the
// password hasher is saturated give their place back (Lockout.Undo): a user told to retry, any number of times, is never
// locked out of their own account by it, and an unknown username behaves
// the same. Wrong passwords still count as before.
func TestLockoutNotSpentWhenBusy(t *testing.T) {
	bh := &busyHasher{}
	e := newEnv(t, withAbuse(3), func(_ *oauth2.Config, d *oauth2.Deps) {
		bh.Hasher = d.Hasher
		d.Hasher = bh
	})
	e.createUser("carol", goodPassword, permiso.RoleUser)
	_, err := e.token(formLogin("carol", wrongPassword), "")
	wantOAuth(t, err, "invalid_grant", http.StatusBadRequest)
	bh.busy.Store(true)
	for _, login := range []string{"carol", "nobody"} {
		for range 10 {
			_, err := e.token(formLogin(login, goodPassword), "")
			wantOAuth(t, err, "temporarily_unavailable", http.StatusServiceUnavailable)
		}
	}
	bh.busy.Store(false)
	if st, err := e.svc.LockoutStatus(e.ctx, "carol"); err != nil || st.Locked || st.Failures != 1 || st.Pending != 0 {
		t.Fatalf("carol after 10 busy answers: %+v, %v; want the one wrong password counted, no lock, nothing in flight", st, err)
	}
	if st, err := e.svc.LockoutStatus(e.ctx, "nobody"); err != nil || st.Locked || st.Failures != 0 || st.Pending != 0 {
		t.Fatalf("unknown user after 10 busy answers: %+v, %v", st, err)
	}
	e.login("carol", goodPassword, "")
}

// TestLimitsBeforeRecords: a token request refused by the request's
// per-IP limits (its limit batch, permiso.Limits) records nothing of its
// client authentication: a flood of bad secrets answered 429 does not
// fill the audit log. Within the limits the failure is audited as before,
// and the request's checks ran (and counted) exactly once per request.
func TestLimitsBeforeRecords(t *testing.T) {
	e := newEnv(t, withAbuse(5))
	_, secret := e.createClient("lim", nil, "read:profile")
	lim := permiso.Limit{Count: 2, Period: time.Minute}
	send := func(auth string) (permiso.LimitCheck, error) {
		limits := &permiso.Limits{}
		limits.Add(permiso.LimitCheck{Key: "ip:service_token:192.0.2.10", Limit: lim})
		req, err := oauth2.ParseTokenRequest(url.Values{"grant_type": {"client_credentials"}}, auth)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Token(e.ctx, req, testMeta, limits)
		return limits.Checks()[0], err
	}
	check, err := send(basic("lim", "wrong"))
	wantOAuth(t, err, "invalid_client", 401)
	if !check.Ran || !check.Result.Allowed || check.Result.Remaining != 1 {
		t.Fatalf("first request: check %+v", check)
	}
	if n := len(e.audit.find(oauth2.ActionClientAuthFailure)); n != 1 {
		t.Fatalf("%d client_auth failure events within the limit, want 1", n)
	}
	if _, err := send(basic("lim", secret)); err != nil {
		t.Fatalf("second request (right secret, within the limit): %v", err)
	}
	for range 5 {
		check, err := send(basic("lim", "wrong"))
		wantOAuth(t, err, "rate_limit_exceeded", http.StatusTooManyRequests)
		if !check.Ran || check.Result.Allowed {
			t.Fatalf("over the limit: check %+v", check)
		}
	}
	if n := len(e.audit.find(oauth2.ActionClientAuthFailure)); n != 1 {
		t.Errorf("%d client_auth failure events after 5 refused requests, want still 1", n)
	}
}
