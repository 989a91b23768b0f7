package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// The mfa_tokens of a password-grant sign-in (docs/mfa.md, "Sign-in").
var mfaTokenTests = []test{
	{"RoundTrip/MFAToken", testRoundTripMFAToken},
	{"MFAToken/UseOnce", testMFATokenUseOnce},
	{"MFAToken/ExpiredAndDeleted", testMFATokenExpiredAndDeleted},
}

// mfaTokenFixture stores an unused token of a new user through a new
// client, expiring in five minutes.
func mfaTokenFixture(h *harness) permiso.MFAToken {
	h.Helper()
	u, c := h.user(""), h.client("")
	t := permiso.MFAToken{
		TokenHash: hashOf(h.uniq("mfa-token")), UserID: u.ID, ClientID: &c.ID, Scopes: []string{"read:profile"},
		AuthTime: h.now, CreatedAt: h.now, ExpiresAt: h.at(permiso.MFATokenLifetime),
	}
	h.must(h.s.CreateMFAToken(h.ctx, t), "CreateMFAToken")
	return t
}

// testRoundTripMFAToken: every field, filled by reflection, is stored and
// read back (UsedAt by UseMFAToken); a taken hash and an unknown user are
// refused.
func testRoundTripMFAToken(h *harness) {
	fix := mfaTokenFixture(h)
	var t permiso.MFAToken
	fillAll(h, &t, "created")
	t.UserID, t.ClientID = fix.UserID, fix.ClientID
	t.Scopes = permiso.SortedUnique(t.Scopes)
	used := t.UsedAt
	t.UsedAt = nil
	t.ExpiresAt = h.at(time.Hour)
	h.must(h.s.CreateMFAToken(h.ctx, t), "CreateMFAToken")
	got, err := h.s.GetMFAToken(h.ctx, t.TokenHash)
	h.must(err, "GetMFAToken")
	diff(h, "mfa token read back", got, t)
	h.must(h.s.UseMFAToken(h.ctx, t.TokenHash, *used), "UseMFAToken")
	t.UsedAt = used
	got, err = h.s.GetMFAToken(h.ctx, t.TokenHash)
	h.must(err, "GetMFAToken after use")
	diff(h, "used mfa token", got, t)

	// A first-party token has no client.
	first := fix
	first.TokenHash, first.ClientID = hashOf(h.uniq("first-party")), nil
	h.must(h.s.CreateMFAToken(h.ctx, first), "CreateMFAToken without a client")
	got, err = h.s.GetMFAToken(h.ctx, first.TokenHash)
	h.must(err, "GetMFAToken without a client")
	if got.ClientID != nil {
		h.Errorf("ClientID = %v, want nil", got.ClientID)
	}

	h.wantErr(h.s.CreateMFAToken(h.ctx, fix), permiso.ErrAlreadyExists, "CreateMFAToken with a taken hash")
	bad := fix
	bad.TokenHash, bad.UserID = hashOf(h.uniq("other")), uuid.New()
	h.wantErr(h.s.CreateMFAToken(h.ctx, bad), permiso.ErrNotFound, "CreateMFAToken for an unknown user")
	_, err = h.s.GetMFAToken(h.ctx, hashOf("unknown"))
	h.wantErr(err, permiso.ErrNotFound, "GetMFAToken(unknown)")
}

// testMFATokenUseOnce: of concurrent uses exactly one wins; the others,
// and any later one, are ErrConflict.
func testMFATokenUseOnce(h *harness) {
	t := mfaTokenFixture(h)
	exactlyOne(h, 8, permiso.ErrConflict, "UseMFAToken", func(int) error {
		return h.s.UseMFAToken(h.ctx, t.TokenHash, h.now)
	})
	got, err := h.s.GetMFAToken(h.ctx, t.TokenHash)
	h.must(err, "GetMFAToken")
	eqTimePtr(h, "UsedAt", got.UsedAt, &h.now)
	h.wantErr(h.s.UseMFAToken(h.ctx, t.TokenHash, h.at(time.Second)), permiso.ErrConflict, "second UseMFAToken")
	h.wantErr(h.s.UseMFAToken(h.ctx, hashOf("unknown"), h.now), permiso.ErrNotFound, "UseMFAToken(unknown)")
}

// testMFATokenExpiredAndDeleted: a token at its expiry cannot be used
// (ErrNotFound, nothing written); DeleteUserMFATokens removes a user's
// tokens only; DeleteExpiredMFATokens removes expired and used ones.
func testMFATokenExpiredAndDeleted(h *harness) {
	t := mfaTokenFixture(h)
	h.wantErr(h.s.UseMFAToken(h.ctx, t.TokenHash, t.ExpiresAt), permiso.ErrNotFound, "UseMFAToken at expiry")
	got, err := h.s.GetMFAToken(h.ctx, t.TokenHash)
	h.must(err, "GetMFAToken")
	eqTimePtr(h, "UsedAt after a refused use", got.UsedAt, nil)

	other := mfaTokenFixture(h)
	second := t
	second.TokenHash = hashOf(h.uniq("second"))
	h.must(h.s.CreateMFAToken(h.ctx, second), "CreateMFAToken")
	n, err := h.s.DeleteUserMFATokens(h.ctx, t.UserID)
	h.must(err, "DeleteUserMFATokens")
	eq(h, "DeleteUserMFATokens count", n, 2)
	_, err = h.s.GetMFAToken(h.ctx, t.TokenHash)
	h.wantErr(err, permiso.ErrNotFound, "GetMFAToken after DeleteUserMFATokens")
	_, err = h.s.GetMFAToken(h.ctx, other.TokenHash)
	h.must(err, "another user's token after DeleteUserMFATokens")

	used := mfaTokenFixture(h)
	h.must(h.s.UseMFAToken(h.ctx, used.TokenHash, h.now), "UseMFAToken")
	n, err = h.s.DeleteExpiredMFATokens(h.ctx, h.now)
	h.must(err, "DeleteExpiredMFATokens now")
	eq(h, "DeleteExpiredMFATokens count (the used one)", n, 1)
	n, err = h.s.DeleteExpiredMFATokens(h.ctx, other.ExpiresAt.Add(time.Second))
	h.must(err, "DeleteExpiredMFATokens after expiry")
	eq(h, "DeleteExpiredMFATokens count (the expired one)", n, 1)
}
