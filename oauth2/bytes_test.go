package oauth2_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// lookups wraps the real store and counts the lookups by login and by
// client_id, to show which requests never reach it.
type lookups struct {
	permiso.Store
	logins, clients atomic.Int64
}

func (l *lookups) GetUserByLogin(ctx context.Context, login string) (permiso.User, error) {
	l.logins.Add(1)
	return l.Store.GetUserByLogin(ctx, login)
}

func (l *lookups) GetServiceClientByClientID(ctx context.Context, id string) (permiso.ServiceClient, error) {
	l.clients.Add(1)
	return l.Store.GetServiceClientByClientID(ctx, id)
}

// dummyCount wraps the real hasher and counts the dummy verifications
// spent on unknown users.
type dummyCount struct {
	oauth2.Hasher
	n atomic.Int64
}

func (d *dummyCount) VerifyDummy(ctx context.Context, password string) error {
	d.n.Add(1)
	return d.Hasher.VerifyDummy(ctx, password)
}

// withLookups puts the counting wrappers around the env's real store and
// hasher.
func withLookups(l **lookups, d **dummyCount) envOption {
	return func(_ *oauth2.Config, deps *oauth2.Deps) {
		store := deps.Users.(permiso.Store)
		*l = &lookups{Store: store}
		deps.Users, deps.Clients = *l, *l
		*d = &dummyCount{Hasher: deps.Hasher}
		deps.Hasher = *d
	}
}

// unstorable are logins and client ids that cannot name anything stored
// (docs/security-model.md, "Untrusted bytes"): PostgreSQL refuses them in
// a text parameter.
var unstorable = []string{"a\x00b", "\xff\xfe", "\xc0\x80", "alice\x00"}

// TestPasswordGrantUnstorableUsername: a username that is not valid UTF-8
// or holds a NUL is an unknown user: the same invalid_grant, the same
// dummy verification and the same lockout as any unknown username, and
// the store is never asked.
func TestPasswordGrantUnstorableUsername(t *testing.T) {
	var l *lookups
	var d *dummyCount
	e := newEnv(t, withAbuse(3), withLookups(&l, &d))
	e.createUser("alice", goodPassword, permiso.RoleUser)

	_, unknown := e.token(formLogin("ghost", goodPassword), "")
	wantOAuth(t, unknown, "invalid_grant", http.StatusBadRequest)
	for _, login := range unstorable {
		logins, dummies := l.logins.Load(), d.n.Load()
		_, err := e.token(formLogin(login, goodPassword), "")
		wantOAuth(t, err, "invalid_grant", http.StatusBadRequest)
		if !reflect.DeepEqual(err, unknown) {
			t.Errorf("%q: %v, want the unknown user's answer %v", login, err, unknown)
		}
		if n := l.logins.Load() - logins; n != 0 {
			t.Errorf("%q: the store was asked %d times", login, n)
		}
		if n := d.n.Load() - dummies; n != 1 {
			t.Errorf("%q: %d dummy verifications, want 1 (the cost of an unknown user)", login, n)
		}
	}
	// The lockout counts them like any unknown username: three failures
	// lock it, and the fourth attempt is refused without a verification.
	for range 3 {
		_, err := e.token(formLogin("lock\x00me", goodPassword), "")
		wantOAuth(t, err, "invalid_grant", http.StatusBadRequest)
	}
	dummies := d.n.Load()
	_, err := e.token(formLogin("lock\x00me", goodPassword), "")
	wantOAuth(t, err, "account_locked", http.StatusLocked)
	if d.n.Load() != dummies {
		t.Error("a locked login was verified")
	}

	// The expired-password change judges its username the same way.
	for _, login := range unstorable[:2] {
		logins := l.logins.Load()
		err := e.svc.ChangeExpiredPassword(e.ctx, login, goodPassword, "Another-Horse-9-battery", testMeta)
		wantOAuth(t, oauth2.AsError(err), "invalid_grant", http.StatusBadRequest)
		if l.logins.Load() != logins {
			t.Errorf("change password %q: the store was asked", login)
		}
	}
	// A real user still logs in.
	e.login("alice", goodPassword, "")
}

// TestClientAuthUnstorableClientID: a client_id that is not valid UTF-8 or
// holds a NUL, sent by HTTP Basic or in the body, is an unknown client:
// 401 invalid_client like any unknown client_id, with the same challenge,
// and the store is never asked.
func TestClientAuthUnstorableClientID(t *testing.T) {
	var l *lookups
	var d *dummyCount
	e := newEnv(t, withLookups(&l, &d))
	e.createClient("svc", nil)

	cc := func(id string, viaBasic bool) error {
		f := url.Values{"grant_type": {"client_credentials"}}
		auth := ""
		if viaBasic {
			auth = basic(id, "secret")
		} else {
			f.Set("client_id", id)
			f.Set("client_secret", "secret")
		}
		_, err := e.token(f, auth)
		return err
	}
	for _, viaBasic := range []bool{true, false} {
		unknown := cc("ghost", viaBasic)
		wantOAuth(t, unknown, "invalid_client", http.StatusUnauthorized)
		for _, id := range unstorable {
			clients := l.clients.Load()
			err := cc(id, viaBasic)
			wantOAuth(t, err, "invalid_client", http.StatusUnauthorized)
			if !reflect.DeepEqual(err, unknown) {
				t.Errorf("%q (basic %v): %v, want the unknown client's answer %v", id, viaBasic, err, unknown)
			}
			if l.clients.Load() != clients {
				t.Errorf("%q (basic %v): the store was asked", id, viaBasic)
			}
		}
	}
	// Introspection and revocation authenticate their callers the same way.
	_, unknown := e.svc.AuthenticateClient(e.ctx, "ghost", "secret", oauth2.ClientAuthPost, testMeta, nil, new(permiso.ServiceClient))
	for _, id := range unstorable {
		clients := l.clients.Load()
		_, err := e.svc.AuthenticateClient(e.ctx, id, "secret", oauth2.ClientAuthPost, testMeta, nil, new(permiso.ServiceClient))
		wantOAuth(t, err, "invalid_client", http.StatusUnauthorized)
		if !reflect.DeepEqual(err, unknown) {
			t.Errorf("AuthenticateClient %q: %v, want %v", id, err, unknown)
		}
		if l.clients.Load() != clients {
			t.Errorf("AuthenticateClient %q: the store was asked", id)
		}
	}
}
