package oauth2_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

func TestErrorValuesAreImmutable(t *testing.T) {
	before := *oauth2.ErrInvalidGrant
	e := oauth2.ErrInvalidGrant.WithDescription("x").WithRetryAfter(time.Second).WithBasicChallenge().
		WithLockedUntil(time.Unix(0, 0)).WithCause(errors.New("cause"))
	if *oauth2.ErrInvalidGrant != before {
		t.Fatal("a With method changed the template")
	}
	if e.Description != "x" || !e.BasicChallenge || e.RetryAfter != time.Second || e.LockedUntil == nil || e.Code != "invalid_grant" {
		t.Fatalf("copy %+v", e)
	}
	if !errors.Is(e, oauth2.ErrInvalidGrant) || errors.Is(e, oauth2.ErrInvalidClient) {
		t.Error("errors.Is by code broken")
	}
	statuses := map[*oauth2.Error]int{
		oauth2.ErrInvalidRequest: 400, oauth2.ErrInvalidClient: 401, oauth2.ErrInvalidGrant: 400,
		oauth2.ErrUnauthorizedClient: 400, oauth2.ErrUnsupportedGrantType: 400, oauth2.ErrInvalidScope: 400,
		oauth2.ErrAccountDisabled: 403, oauth2.ErrPasswordExpired: 403, oauth2.ErrAccountLocked: 423,
		oauth2.ErrRateLimited: 429, oauth2.ErrTemporarilyUnavailable: 503, oauth2.ErrServerError: 500,
	}
	for e, st := range statuses {
		if e.Status != st {
			t.Errorf("%s: status %d, want %d", e.Code, e.Status, st)
		}
	}
}

func TestAsError(t *testing.T) {
	if oauth2.AsError(nil) != nil {
		t.Error("AsError(nil) != nil")
	}
	secret := errors.New("pq: relation users does not exist")
	tests := []struct {
		in     error
		code   string
		status int
	}{
		{oauth2.ErrInvalidScope, "invalid_scope", 400},
		{permiso.Wrap(permiso.EUNAVAILABLE, "busy", secret), "temporarily_unavailable", 503},
		{permiso.Errorf(permiso.ERATELIMIT, "slow down"), "rate_limit_exceeded", 429},
		{secret, "server_error", 500},
		{permiso.Wrap(permiso.EINTERNAL, "boom", secret), "server_error", 500},
	}
	for _, tt := range tests {
		got := oauth2.AsError(tt.in)
		if got.Code != tt.code || got.Status != tt.status || strings.Contains(got.Description, "pq:") {
			t.Errorf("AsError(%v) = %+v", tt.in, got)
		}
	}
	if got := oauth2.AsError(permiso.ErrUnavailable); got.RetryAfter != time.Second {
		t.Errorf("503 without Retry-After: %+v", got)
	}
}

// brokenUsers fails every user lookup with err.
type brokenUsers struct {
	permiso.UserStore
	err error
}

func (b brokenUsers) GetUserByLogin(context.Context, string) (permiso.User, error) {
	return permiso.User{}, b.err
}

func TestTokenStoreFailures(t *testing.T) {
	leak := errors.New("sqlite: disk I/O error at /var/lib/permiso.db")
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{leak, "server_error", 500},
		{permiso.Wrap(permiso.EUNAVAILABLE, "The database is busy", leak), "temporarily_unavailable", 503},
	}
	for _, tt := range tests {
		e := newEnv(t, func(_ *oauth2.Config, d *oauth2.Deps) { d.Users = brokenUsers{d.Users, tt.err} })
		_, err := e.token(url.Values{"username": {"alice"}, "password": {"pw"}}, "")
		oe := wantOAuth(t, err, tt.code, tt.status)
		if strings.Contains(oe.Description, "disk") || strings.Contains(oe.Description, "/var") {
			t.Errorf("internal text leaked: %q", oe.Description)
		}
		if tt.status == 503 && oe.RetryAfter != time.Second {
			t.Errorf("RetryAfter %s", oe.RetryAfter)
		}
		if !errors.Is(err, leak) {
			t.Error("cause not kept for logs")
		}
	}
}
