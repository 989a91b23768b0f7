package oauth2_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testlog"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/redis"
)

// leaveAt is where a test's client goes away: the named step runs, then
// the request's context is cancelled (as net/http cancels it when the
// connection closes), and the login goes on with it.
type leaveAt struct {
	step   string
	cancel context.CancelFunc
}

// leaving holds the point at which the running login's client leaves.
type leaving struct{ at atomic.Pointer[leaveAt] }

func (l *leaving) after(step string) {
	if a := l.at.Load(); a != nil && a.step == step {
		a.cancel()
	}
}

type leavingLockout struct {
	permiso.Lockout
	l *leaving
}

func (x leavingLockout) Begin(ctx context.Context, key string) (permiso.LockoutAttempt, error) {
	a, err := x.Lockout.Begin(ctx, key)
	x.l.after("begin")
	return a, err
}

type leavingHasher struct {
	oauth2.Hasher
	l *leaving
}

func (x leavingHasher) Verify(ctx context.Context, password, encoded string) (bool, bool, error) {
	ok, rehash, err := x.Hasher.Verify(ctx, password, encoded)
	x.l.after("verify")
	return ok, rehash, err
}

func (x leavingHasher) VerifyDummy(ctx context.Context, password string) error {
	err := x.Hasher.VerifyDummy(ctx, password)
	x.l.after("verify")
	return err
}

type leavingStore struct {
	permiso.Store
	l *leaving
}

func (x leavingStore) CreateSessionWithToken(ctx context.Context, s permiso.Session, t permiso.RefreshToken) (permiso.Session, permiso.RefreshToken, error) {
	s, t, err := x.Store.CreateSessionWithToken(ctx, s, t)
	x.l.after("session stored")
	return s, t, err
}

func (x leavingStore) GetUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	u, err := x.Store.GetUser(ctx, id)
	x.l.after("re-checked")
	return u, err
}

func (x leavingStore) GetRefreshTokenSession(ctx context.Context, hash string) (permiso.RefreshToken, permiso.Session, error) {
	t, sess, err := x.Store.GetRefreshTokenSession(ctx, hash)
	x.l.after("token read")
	return t, sess, err
}

// leavingRotator is a leavingStore on a store that rotates refresh
// tokens in one statement (permiso.RefreshRotator), which it keeps.
type leavingRotator struct {
	leavingStore
	r permiso.RefreshRotator
}

func (x leavingRotator) RotateRefreshToken(ctx context.Context, r permiso.RefreshRotation) (permiso.RefreshToken, permiso.Session, bool, error) {
	return x.r.RotateRefreshToken(ctx, r)
}

func (x leavingRotator) UndoRefreshRotation(ctx context.Context, presented, replacement uuid.UUID) error {
	return x.r.UndoRefreshRotation(ctx, presented, replacement)
}

func leavingOn(db permiso.Store, l *leaving) permiso.Store {
	if r := permiso.RefreshRotatorOf(db); r != nil {
		return leavingRotator{leavingStore{db, l}, r}
	}
	return leavingStore{db, l}
}

// TestAbandonedLoginCompensates: a password grant whose client goes away
// at each step of the login leaves nothing held and nothing live that it
// should not, and logs no warning (docs/abuse-resistance.md, "Lockout"):
// a lockout place taken before the password check is given back; a wrong
// password whose check completed is counted as a failure all the same
// (no free guesses by hanging up); a right one resets the count; a session
// stored but not confirmed is revoked; a confirmed login is recorded
// (last_login). A refresh token replayed past the reuse grace window
// revokes its family and session even when the replaying client hangs
// up. The compensating writes run to their end whatever became of the
// request. On SQLite and PostgreSQL, with the Redis lockout when a
// Redis server is configured, else the in-process one.
func TestAbandonedLoginCompensates(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		l := &leaving{}
		logger, logs := testlog.NewLogger()
		var lockout permiso.Lockout
		e := newEnvOn(t, db, func(_ *oauth2.Config, d *oauth2.Deps) {
			if testdb.HasRedis() {
				c, err := redis.Open(testdb.RedisURL(t), redis.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				lockout = redis.NewLockout(c, "permiso-test:abandoned:"+uuid.NewString()+":", 3, time.Minute)
			} else {
				lockout = inprocess.NewLockout(3, time.Minute)
			}
			d.Lockout = leavingLockout{lockout, l}
			d.Hasher = leavingHasher{d.Hasher, l}
			st := leavingOn(db, l)
			d.Users, d.Sessions, d.Tokens = st, st, st
			d.Logger = logger
		})
		u := e.createUser("dora", goodPassword, permiso.RoleUser)

		// send sends the grant form, its client leaving after step; it
		// fails the test on a warning or error logged meanwhile, except
		// the one expected (warned).
		send := func(t *testing.T, step string, form url.Values, warned string) (oauth2.TokenResponse, error) {
			t.Helper()
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			if step == "sent" {
				cancel() // gone as soon as the request was read
			}
			l.at.Store(&leaveAt{step: step, cancel: cancel})
			defer l.at.Store(nil)
			mark := len(logs.String())
			req, err := oauth2.ParseTokenRequest(form, "")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.svc.Token(ctx, req, testMeta, nil)
			for line := range strings.SplitSeq(strings.TrimSpace(logs.String()[mark:]), "\n") {
				var r struct{ Level, Msg string }
				if line != "" && json.Unmarshal([]byte(line), &r) == nil && (r.Level == "WARN" || r.Level == "ERROR") && r.Msg != warned {
					t.Errorf("logged %s %q: %s", r.Level, r.Msg, line)
				}
			}
			return resp, err
		}
		// login sends dora's password grant with password.
		login := func(t *testing.T, step, password string) (oauth2.TokenResponse, error) {
			t.Helper()
			return send(t, step, formLogin("dora", password), "")
		}
		// gone checks that err is the client's leaving.
		gone := func(t *testing.T, err error) {
			t.Helper()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("answer %v, want the request's cancellation", err)
			}
		}
		state := func(t *testing.T, failures int) {
			t.Helper()
			st, err := e.svc.LockoutStatus(e.ctx, "dora")
			if err != nil || st.Failures != failures || st.Pending != 0 || st.Locked {
				t.Fatalf("lockout %+v, %v; want %d failures and no place held", st, err, failures)
			}
		}
		active := func(t *testing.T) []permiso.Session {
			t.Helper()
			ss, err := db.ListSessions(e.ctx, u.ID, true, e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			return ss
		}

		t.Run("before the password check", func(t *testing.T) {
			for _, pw := range []string{goodPassword, wrongPassword} {
				_, err := login(t, "begin", pw)
				gone(t, err)
			}
			state(t, 0) // no password was checked: both places given back
		})
		t.Run("wrong password checked", func(t *testing.T) {
			_, err := login(t, "verify", wrongPassword)
			wantOAuth(t, err, "invalid_grant", 400)
			state(t, 1) // counted, as if the client had waited
		})
		t.Run("right password checked", func(t *testing.T) {
			_, err := login(t, "verify", goodPassword)
			gone(t, err)
			state(t, 0) // a right password resets the count, even unanswered
			if ss := active(t); len(ss) != 0 {
				t.Fatalf("sessions %v", ss)
			}
		})
		t.Run("session stored, not confirmed", func(t *testing.T) {
			_, err := login(t, "session stored", goodPassword)
			gone(t, err)
			state(t, 0)
			if ss := active(t); len(ss) != 0 {
				t.Fatalf("the unconfirmed session is live: %v", ss)
			}
			all, err := db.ListSessions(e.ctx, u.ID, false, e.clock.Now())
			if err != nil || len(all) != 1 || all[0].RevokedAt == nil {
				t.Fatalf("sessions %+v, %v; want the one stored, revoked", all, err)
			}
		})
		t.Run("login confirmed", func(t *testing.T) {
			resp, err := login(t, "re-checked", goodPassword)
			if err != nil {
				t.Fatal(err)
			}
			state(t, 0)
			if ss := active(t); len(ss) != 1 || ss[0].ID.String() != resp.SessionID {
				t.Fatalf("sessions %v, want the login's", ss)
			}
			got, err := db.GetUser(e.ctx, u.ID)
			if err != nil || got.LastLogin == nil {
				t.Fatalf("last_login not recorded: %+v, %v", got.LastLogin, err)
			}
		})
		// The account is free: the next login goes through.
		first := e.login("dora", goodPassword, "")

		// replayed rotates login's refresh token, then replays it past
		// the grace window, its client leaving at step: the family and
		// the session are revoked all the same.
		replayed := func(t *testing.T, login oauth2.TokenResponse, step string) {
			t.Helper()
			second, err := e.refresh(login.RefreshToken, "", "")
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(e.cfg.ReuseGrace + time.Second)
			_, err = send(t, step, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login.RefreshToken}},
				"refresh token reuse detected; revoking family and session")
			gone(t, err) // answered as the client left, the reuse revoked all the same
			e.wantRefreshRefused(second.RefreshToken)
			for _, s := range active(t) {
				if s.ID.String() == login.SessionID {
					t.Fatalf("the replayed family's session is live")
				}
			}
		}
		t.Run("refresh token replayed", func(t *testing.T) {
			replayed(t, first, "token read")
		})
		// The client resets its connection as soon as it has sent the
		// replay: the token is read, and the reuse decided, all the same
		// (presentedToken; docs/security-model.md, "Refresh token reuse").
		t.Run("refresh token replayed, client gone at once", func(t *testing.T) {
			replayed(t, e.login("dora", goodPassword, ""), "sent")
		})
	})
}

// TestAbandonedRefreshRecordsNoFailure: a refresh whose client went away
// before its answer (a 499, permiso.ClientGone) records no
// token.refresh_failure, so that replays of one token sent and dropped at
// once, which never wait for the audit queue, cannot write events at the
// rate they are sent and push other users' events out (docs/audit.md,
// "Backpressure instead of dropping"). The reuse itself is recorded once,
// by the presentation that detected it, and a replay whose client waits
// for its answer is recorded as before (docs/security-model.md, "Refresh
// token reuse").
func TestAbandonedRefreshRecordsNoFailure(t *testing.T) {
	backends(t, func(t *testing.T, db permiso.Store) {
		e := newEnvOn(t, db)
		login, _ := e.rotated(time.Minute) // past the grace window
		if _, err := e.refresh(login.RefreshToken, "", ""); err == nil {
			t.Fatal("a reused refresh token answered a pair")
		}
		count := func() (reuse, failures, all int) {
			e.audit.mu.Lock()
			all = len(e.audit.events)
			e.audit.mu.Unlock()
			return len(e.audit.find(oauth2.ActionTokenReuseDetected)), len(e.audit.find(oauth2.ActionTokenRefreshFailure)), all
		}
		if reuse, failures, _ := count(); reuse != 1 || failures != 1 {
			t.Fatalf("the detecting presentation recorded %d token.reuse_detected and %d token.refresh_failure, want 1 and 1", reuse, failures)
		}
		_, _, before := count()
		gone, cancel := context.WithCancel(e.ctx)
		cancel()
		for _, rt := range []string{login.RefreshToken, "an-unknown-refresh-token"} {
			req, err := oauth2.ParseTokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "")
			if err != nil {
				t.Fatal(err)
			}
			for range 50 {
				if _, err := e.svc.Token(gone, req, testMeta, nil); !errors.Is(err, context.Canceled) {
					t.Fatalf("a refresh whose client went away: %v, want the cancellation", err)
				}
			}
		}
		if _, _, after := count(); after != before {
			t.Fatalf("100 refreshes whose clients went away recorded %d audit events, want none", after-before)
		}
		// A replay whose client waits for its answer is refused and
		// recorded, as any refused refresh.
		e.wantRefreshRefused(login.RefreshToken)
		if reuse, failures, _ := count(); reuse != 1 || failures != 2 {
			t.Fatalf("a replay answered: %d token.reuse_detected and %d token.refresh_failure, want 1 and 2", reuse, failures)
		}
	})
}
