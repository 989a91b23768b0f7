package jwt

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/internal/testjwt"
)

const (
	testIssuer   = "https://auth.example.com"
	testAudience = "https://api.example.com"
	testLifetime = 15 * time.Minute
)

var (
	testSecret   = []byte("0123456789abcdef0123456789abcdef-current")
	testPrevious = []byte("0123456789abcdef0123456789abcdef-previous")
	testStart    = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
)

// fakeKeyStore is an in-memory permiso.KeyStore.
type fakeKeyStore struct {
	mu    sync.Mutex
	keys  map[string]permiso.SigningKey
	lists int
}

func newFakeKeyStore() *fakeKeyStore {
	return &fakeKeyStore{keys: map[string]permiso.SigningKey{}}
}

func (f *fakeKeyStore) CreateSigningKey(_ context.Context, k permiso.SigningKey) (permiso.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[k.ID]; ok {
		return permiso.SigningKey{}, permiso.ErrAlreadyExists
	}
	f.keys[k.ID] = k
	return k, nil
}

func (f *fakeKeyStore) ListSigningKeys(_ context.Context, now time.Time) ([]permiso.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	var out []permiso.SigningKey
	for _, k := range f.keys {
		if k.ExpiresAt == nil || now.Before(*k.ExpiresAt) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b permiso.SigningKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (f *fakeKeyStore) RetireSigningKeys(_ context.Context, alg, keepID string, now, expiresAt time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id, k := range f.keys {
		if k.Algorithm == alg && id != keepID && k.RetiredAt == nil {
			k.RetiredAt, k.ExpiresAt = &now, &expiresAt
			f.keys[id] = k
			n++
		}
	}
	return n, nil
}

func (f *fakeKeyStore) get(id string) permiso.SigningKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys[id]
}

func (f *fakeKeyStore) all() []permiso.SigningKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]permiso.SigningKey, 0, len(f.keys))
	for _, k := range f.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b permiso.SigningKey) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (f *fakeKeyStore) listCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lists
}

// newClock returns a fake clock at testStart.
func newClock() *testclock.Clock { return testclock.New(testStart) }

func testOptions(alg string, store permiso.KeyStore, clk *testclock.Clock) Options {
	return Options{
		Algorithm:        alg,
		Secret:           testSecret,
		Issuer:           testIssuer,
		Audience:         []string{testAudience, "https://other.example.com"},
		Keys:             store,
		MaxTokenLifetime: testLifetime,
		Now:              clk.Now,
	}
}

// hs256Signer is a signer of the test options for HS256 on a clock of
// its own.
func hs256Signer(t testing.TB) (*Signer, *testclock.Clock) {
	t.Helper()
	clk := newClock()
	return newTestSigner(t, testOptions(HS256, nil, clk)), clk
}

// storeSigner is a signer of the test options for alg over a fresh key
// store, on a clock of its own; it returns the store and the clock too.
func storeSigner(t testing.TB, alg string) (*Signer, *fakeKeyStore, *testclock.Clock) {
	t.Helper()
	clk := newClock()
	store := newFakeKeyStore()
	return newTestSigner(t, testOptions(alg, store, clk)), store, clk
}

// wantExpired checks that s refuses tok as expired.
func wantExpired(t *testing.T, s *Signer, tok string) {
	t.Helper()
	_, err := s.Verify(context.Background(), tok)
	wantRejected(t, err, "Token has expired")
}

func newTestSigner(t testing.TB, opts Options) *Signer {
	t.Helper()
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New(%s): %v", opts.Algorithm, err)
	}
	return s
}

func boolPtr(b bool) *bool { return &b }

// mustSign signs c with s, failing t on an error.
func mustSign(ctx context.Context, t testing.TB, s *Signer, c permiso.AccessClaims) string {
	t.Helper()
	tok, err := s.Sign(ctx, c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

// signVerified signs c and verifies the token once, so that it is in
// the cache of verified tokens when the cache takes it.
func signVerified(ctx context.Context, t testing.TB, s *Signer, c permiso.AccessClaims) string {
	t.Helper()
	tok := mustSign(ctx, t, s, c)
	if _, err := s.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return tok
}

// fullClaims sets every claim.
func fullClaims(now time.Time) permiso.AccessClaims {
	return permiso.AccessClaims{
		Issuer:      testIssuer,
		Subject:     "2b1f7a2e-6a55-4c8e-9d1e-0c3b8e0f4a11",
		Audience:    []string{testAudience},
		ExpiresAt:   now.Add(testLifetime),
		IssuedAt:    now,
		NotBefore:   now,
		ID:          "jti-0001",
		ClientID:    "client-abc",
		Scopes:      []string{"read:profile", "write:profile"},
		Type:        permiso.TokenTypeAccess,
		SessionID:   "sid-0001",
		AMR:         []string{permiso.AMRPassword, permiso.AMROTP},
		Roles:       []string{"user", "admin"},
		Username:    "alice",
		Email:       "alice@example.com",
		IsSuperuser: boolPtr(true),
		IsTrusted:   boolPtr(false),
	}
}

var b64 = base64.RawURLEncoding

// craft builds a compact JWS from header and payload, signed by sign
// (which gets the signing input; nil means an empty signature).
func craft(t testing.TB, header, payload map[string]any, sign func(input string) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	var sig []byte
	if sign != nil {
		sig = sign(input)
	}
	return input + "." + b64.EncodeToString(sig)
}

func hmacSign(h func() hash.Hash, key []byte) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

var hs256 = func(key []byte) func(string) []byte { return hmacSign(sha256.New, key) }

// decodeSegment returns the JSON object of one segment of a compact JWS.
func decodeSegment(t testing.TB, token string, i int) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	testjwt.Decode(t, token, i, &m)
	return m
}

func headerKID(t testing.TB, token string) string {
	t.Helper()
	var kid string
	if err := json.Unmarshal(decodeSegment(t, token, 0)["kid"], &kid); err != nil {
		t.Fatalf("kid: %v", err)
	}
	return kid
}

// wantRejected checks that err is the caller-safe EINVALIDTOKEN error with
// message msg.
func wantRejected(t testing.TB, err error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded, want %q", msg)
	}
	if code := permiso.ErrorCode(err); code != permiso.EINVALIDTOKEN {
		t.Fatalf("code = %s, want %s (err %v)", code, permiso.EINVALIDTOKEN, err)
	}
	if got := permiso.ErrorMessage(err); got != msg {
		t.Fatalf("message = %q, want %q (err %v)", got, msg, err)
	}
}
