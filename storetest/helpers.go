package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testrace"
)

// Fixed ids of the seed data (docs/data-model.md, "Seed").
var (
	roleUserID    = uuid.MustParse("00000000-0000-4000-8000-000000000001")
	roleAdminID   = uuid.MustParse("00000000-0000-4000-8000-000000000002")
	roleServiceID = uuid.MustParse("00000000-0000-4000-8000-000000000003")

	seedScopes = []struct {
		name string
		id   uuid.UUID
	}{
		{"read:profile", uuid.MustParse("00000000-0000-4000-8000-000000000101")},
		{"write:profile", uuid.MustParse("00000000-0000-4000-8000-000000000102")},
		{"admin:users", uuid.MustParse("00000000-0000-4000-8000-000000000103")},
		{"admin:clients", uuid.MustParse("00000000-0000-4000-8000-000000000104")},
		{"admin:system", uuid.MustParse("00000000-0000-4000-8000-000000000105")},
		{"admin:sessions", uuid.MustParse("00000000-0000-4000-8000-000000000106")},
		{"admin:permissions", uuid.MustParse("00000000-0000-4000-8000-000000000107")},
		{"admin:security", uuid.MustParse("00000000-0000-4000-8000-000000000108")},
		{"admin:audit", uuid.MustParse("00000000-0000-4000-8000-000000000109")},
		{"admin:logs", uuid.MustParse("00000000-0000-4000-8000-000000000110")},
		{"admin:tokens", uuid.MustParse("00000000-0000-4000-8000-000000000111")},
	}
	scopeReadProfileID  = seedScopes[0].id
	scopeWriteProfileID = seedScopes[1].id
	scopeAdminUsersID   = seedScopes[2].id
)

// harness bundles the subtest, its store and its context with fixtures and
// assertions.
type harness struct {
	*testing.T
	s   permiso.Store
	ctx context.Context
	// now is the subtest's reference time: UTC, truncated to microseconds.
	now time.Time
	seq atomic.Int64
}

func newHarness(t *testing.T, s permiso.Store) *harness {
	return &harness{T: t, s: s, ctx: t.Context(), now: time.Now().UTC().Truncate(time.Microsecond)}
}

// at returns the reference time moved by d.
func (h *harness) at(d time.Duration) time.Time { return h.now.Add(d) }

// uniq returns a string unique within the subtest.
func (h *harness) uniq(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, h.seq.Add(1))
}

func ptr[T any](v T) *T { return &v }

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// must stops the subtest on an unexpected error.
func (h *harness) must(err error, what string, args ...any) {
	h.Helper()
	if err != nil {
		h.Fatalf("%s: unexpected error: %v", fmt.Sprintf(what, args...), err)
	}
}

// sqlMarkers (case-sensitive) and driverMarkers (case-insensitive) must
// never appear in a caller-visible error message.
var (
	sqlMarkers    = []string{"SELECT ", "INSERT ", "UPDATE ", "DELETE ", " WHERE "}
	driverMarkers = []string{"constraint", "sqlite", "sqlstate", "pgx", "violates", "duplicate key"}
)

// wantErr checks that err matches target with errors.Is and that its
// caller-visible message leaks no SQL or driver text.
func (h *harness) wantErr(err, target error, what string, args ...any) {
	h.Helper()
	w := fmt.Sprintf(what, args...)
	if err == nil {
		h.Fatalf("%s: got no error, want %v", w, target)
	}
	if !errors.Is(err, target) {
		h.Fatalf("%s: err = %v, want errors.Is(err, %v)", w, err, target)
	}
	msg := permiso.ErrorMessage(err)
	for _, m := range sqlMarkers {
		if strings.Contains(msg, m) {
			h.Errorf("%s: caller-visible message %q leaks SQL text (%q)", w, msg, m)
		}
	}
	for _, m := range driverMarkers {
		if strings.Contains(strings.ToLower(msg), m) {
			h.Errorf("%s: caller-visible message %q leaks driver text (%q)", w, msg, m)
		}
	}
}

// wantNotFound checks that every call on a row that does not exist,
// named by its method, failed with ErrNotFound.
func (h *harness) wantNotFound(calls map[string]error) {
	h.Helper()
	for _, what := range slices.Sorted(maps.Keys(calls)) {
		h.wantErr(calls[what], permiso.ErrNotFound, "%s", what)
	}
}

// errOf is the error of a call that also returns a value.
func errOf[T any](_ T, err error) error { return err }

func eq[T comparable](h *harness, what string, got, want T) {
	h.Helper()
	if got != want {
		h.Errorf("%s = %v, want %v", what, got, want)
	}
}

func eqPtr[T comparable](h *harness, what string, got, want *T) {
	h.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		h.Errorf("%s = %v, want %v", what, fmtPtr(got), fmtPtr(want))
	case *got != *want:
		h.Errorf("%s = %v, want %v", what, *got, *want)
	}
}

func fmtPtr[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// eqTime checks that got is the same instant as want and is in time.UTC.
func eqTime(h *harness, what string, got, want time.Time) {
	h.Helper()
	if !got.Equal(want) {
		h.Errorf("%s = %v, want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		h.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

func eqTimePtr(h *harness, what string, got, want *time.Time) {
	h.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		h.Errorf("%s = %v, want %v", what, fmtPtr(got), fmtPtr(want))
	default:
		eqTime(h, what, *got, *want)
	}
}

func eqStrings(h *harness, what string, got, want []string) {
	h.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != len(want) {
		h.Errorf("%s = %q, want %q", what, got, want)
	}
}

func scopeNames(ss []permiso.Scope) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name
	}
	return out
}

func roleNames(rs []permiso.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

// newUser returns a valid, unsaved user with a unique name.
func (h *harness) newUser(name string) permiso.User {
	if name == "" {
		name = h.uniq("user")
	}
	return permiso.User{
		Username:          name,
		Email:             name + "@example.com",
		PasswordHash:      "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		IsActive:          true,
		PasswordChangedAt: h.now,
		CreatedAt:         h.now,
		UpdatedAt:         h.now,
	}
}

// user creates a user with the given roles.
func (h *harness) user(name string, roleIDs ...uuid.UUID) permiso.User {
	h.Helper()
	u, err := h.s.CreateUser(h.ctx, h.newUser(name), roleIDs)
	h.must(err, "CreateUser(%s)", name)
	return u
}

// session creates an active session of the user, expiring in an hour.
func (h *harness) session(userID uuid.UUID, clientID *uuid.UUID) permiso.Session {
	h.Helper()
	s, err := h.s.CreateSession(h.ctx, permiso.Session{
		ID: uuid.New(), UserID: userID, ClientID: clientID, IPAddress: "192.0.2.1",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour),
	})
	h.must(err, "CreateSession")
	return s
}

// getRole reads the role with this id, failing the test (what) when it
// cannot.
func (h *harness) getRole(id uuid.UUID, what string) permiso.Role {
	h.Helper()
	r, err := h.s.GetRole(h.ctx, id)
	h.must(err, "%s", what)
	return r
}

// firstRefresh creates a user named user, a first-party session of it and
// the session's first refresh token (a new family, hash hashOf(token)).
func (h *harness) firstRefresh(user, token string) (permiso.Session, permiso.RefreshToken) {
	h.Helper()
	sess := h.session(h.user(user).ID, nil)
	return sess, h.refresh(sess, uuid.Nil, token)
}

// refresh creates an unused refresh token of the session; its family is
// family (a new one when zero) and its hash is hashOf(token).
func (h *harness) refresh(sess permiso.Session, family uuid.UUID, token string) permiso.RefreshToken {
	h.Helper()
	if family == uuid.Nil {
		family = uuid.New()
	}
	rt, err := h.s.CreateRefreshToken(h.ctx, h.newRefresh(sess, family, token))
	h.must(err, "CreateRefreshToken")
	return rt
}

func (h *harness) newRefresh(sess permiso.Session, family uuid.UUID, token string) permiso.RefreshToken {
	return permiso.RefreshToken{
		ID: uuid.New(), TokenHash: hashOf(token), UserID: sess.UserID, ClientID: sess.ClientID,
		SessionID: sess.ID, FamilyID: family, Scopes: []string{"read:profile"},
		IssuedAt: h.now, ExpiresAt: h.at(24 * time.Hour),
	}
}

// client creates a confidential service client with the given scopes.
func (h *harness) client(name string, scopeIDs ...uuid.UUID) permiso.ServiceClient {
	h.Helper()
	c, err := h.s.CreateServiceClient(h.ctx, h.newClient(name), scopeIDs)
	h.must(err, "CreateServiceClient(%s)", name)
	return c
}

func (h *harness) newClient(name string) permiso.ServiceClient {
	if name == "" {
		name = h.uniq("client")
	}
	return permiso.ServiceClient{
		ClientID: name, SecretHash: hashOf(name + "-secret"), Name: "Client " + name,
		ClientType: "confidential", IsActive: true, RateLimitPerMinute: 60,
		RateLimitPerHour: 1000, CreatedAt: h.now, UpdatedAt: h.now,
	}
}

// scope creates a scope named name ("action:resource").
func (h *harness) scope(name string) permiso.Scope {
	h.Helper()
	_, res, _ := strings.Cut(name, ":")
	s, err := h.s.CreateScope(h.ctx, permiso.Scope{
		Name: name, Description: ptr("scope " + name), Resource: ptr(res),
		CreatedAt: h.now, UpdatedAt: h.now,
	})
	h.must(err, "CreateScope(%s)", name)
	return s
}

// role creates a role with the given scopes.
func (h *harness) role(name string, scopeIDs ...uuid.UUID) permiso.Role {
	h.Helper()
	r, err := h.s.CreateRole(h.ctx, permiso.Role{Name: name, Description: ptr("role " + name),
		CreatedAt: h.now, UpdatedAt: h.now}, scopeIDs)
	h.must(err, "CreateRole(%s)", name)
	return r
}

// getRefresh returns the token with this raw value, or fails.
func (h *harness) getRefresh(token string) permiso.RefreshToken {
	h.Helper()
	rt, err := h.s.GetRefreshTokenByHash(h.ctx, hashOf(token))
	h.must(err, "GetRefreshTokenByHash(%s)", token)
	return rt
}

// errCallback is returned by update callbacks to check that their error
// comes back unchanged and nothing is written.
var errCallback = errors.New("storetest: callback refused")

// exactlyOne runs n calls of f at once (testrace.All) and returns the
// index of the one that succeeded; there must be exactly one, and every
// other call must fail with loser (wantErr).
func exactlyOne(h *harness, n int, loser error, what string, f func(i int) error) int {
	h.Helper()
	errs := testrace.All(n, f)
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			h.Fatalf("%s: calls %d and %d both succeeded, want exactly one", what, winner, i)
		case err == nil:
			winner = i
		default:
			h.wantErr(err, loser, "losing %s (call %d)", what, i)
		}
	}
	if winner < 0 {
		h.Fatalf("no call of %s succeeded: %v", what, errs)
	}
	return winner
}

// pageThrough lists the n items of want ten at a time, from offset 0 up to
// (not including) end, which may pass the last page. Every page must report
// the total n and hold the items left, at most ten; the pages together must
// hold the items in want's order (order says which). show describes an item
// in a failure.
func pageThrough[T any](h *harness, what, order string, want []T, end int,
	list func(offset int) ([]T, int, error), id func(T) uuid.UUID, show func(T) string) {
	h.Helper()
	n := len(want)
	var got []T
	for off := 0; off < end; off += 10 {
		items, total, err := list(off)
		h.must(err, "list %s (offset %d)", what, off)
		eq(h, fmt.Sprintf("total at offset %d", off), total, n)
		eq(h, fmt.Sprintf("page size at offset %d", off), len(items), min(10, max(0, n-off)))
		got = append(got, items...)
	}
	if len(got) != n {
		h.Fatalf("paged through %d %s, want %d", len(got), what, n)
	}
	for i := range got {
		if id(got[i]) != id(want[i]) {
			h.Fatalf("%s %d = %s, want %s: not ordered by %s", what, i, show(got[i]), show(want[i]), order)
		}
	}
}
