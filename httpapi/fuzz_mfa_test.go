package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/oauth2"
)

// mfaFuzzPassword is the password of the fuzz server's user.
const mfaFuzzPassword = "Tq8#vLm2!pZr-fz-Kx4"

// newMFAFuzzServer is a server on db with second factors wired, and a
// user with a confirmed factor; it returns the handler and a live
// mfa_token of that user (first-party).
func newMFAFuzzServer(tb testing.TB, db permiso.Store) (http.Handler, string) {
	tb.Helper()
	ctx := context.Background()
	ws := newWired(tb, wiring{db: db, mfaGrant: true, authDeps: oauth2.Deps{Lockout: inprocess.NewLockout(5, time.Minute)}})
	h, md := ws.h, ws.mfa

	hash := testwire.Hash(tb, ws.hasher, mfaFuzzPassword)
	u := activeUser(tb, db, "fuzz", hash, false)
	secret, err := mfa.NewTOTPSecret()
	if err != nil {
		tb.Fatal(err)
	}
	sealed, err := md.Box.Seal(secret, mfa.AAD(u.ID.String(), mfa.KindTOTP))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.PutPendingMFAFactor(ctx, permiso.MFAFactor{UserID: u.ID, Kind: string(mfa.KindTOTP), Secret: sealed}); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.ConfirmMFAFactor(ctx, u.ID, string(mfa.KindTOTP), time.Now().UTC(), []string{mfa.HashRecoveryCode(u.ID.String(), uuid.NewString())}); err != nil {
		tb.Fatal(err)
	}
	w := serve(h, formRequest("/api/v1/auth/token", url.Values{"grant_type": {"password"}, "username": {"fuzz"}, "password": {mfaFuzzPassword}}))
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusForbidden || body["mfa_token"] == nil {
		tb.Fatalf("password grant: %d %s", w.Code, w.Body)
	}
	return h, body["mfa_token"].(string)
}

// FuzzMFAGrant sends the mfa grant's inputs (mfa_token, otp,
// recovery_code: any bytes, NUL and invalid UTF-8 included, up to huge) to
// the token endpoint on SQLite and, when PERMISO_TEST_DATABASE_URL is
// set, PostgreSQL (which refuses NUL and invalid UTF-8 in text): the
// answer is always a 4xx JSON error envelope, never a 5xx, never a token.
// The user's mfa_token is live for the seeds; the seeds' codes are wrong.
func FuzzMFAGrant(f *testing.F) {
	type backend struct {
		name string
		h    http.Handler
	}
	h, live := newMFAFuzzServer(f, testdb.SQLite(f))
	servers := []backend{{"sqlite", h}}
	tokens := []string{live}
	if testdb.HasPostgres() {
		h, live := newMFAFuzzServer(f, testdb.Postgres(f, "fuzzmfa"))
		servers = append(servers, backend{"postgres", h})
		tokens = append(tokens, live)
	}
	for _, tok := range tokens {
		f.Add(tok, "000000", "")
		f.Add(tok, "", "AAAA-BBBB-CCCC-DDDD")
		f.Add(tok, "12\x0034", "")
		f.Add(tok, "", "\xff\xfe-\x00")
	}
	f.Add("", "123456", "")
	f.Add("tok\x00en", "123456", "")
	f.Add("\xc3\x28", "\xc3\x28", "")
	f.Add(strings.Repeat("x", 5000), strings.Repeat("9", 100), "")
	f.Add(strings.Repeat("\x00", 70000), "1", "1")
	f.Add("a", "123456", "AAAA-BBBB-CCCC-DDDD")
	f.Fuzz(func(t *testing.T, token, otp, recovery string) {
		form := url.Values{"grant_type": {oauth2.GrantMFA}}
		for k, v := range map[string]string{"mfa_token": token, "otp": otp, "recovery_code": recovery} {
			if v != "" {
				form.Set(k, v)
			}
		}
		for _, s := range servers {
			w := serve(s.h, formRequest("/api/v1/auth/token", form))
			if w.Code < 400 || w.Code > 499 {
				t.Fatalf("%s: status %d, want 4xx: %s", s.name, w.Code, w.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: body is not JSON: %q", s.name, w.Body)
			}
			if e, _ := body["error"].(string); e == "" || body["access_token"] != nil || body["refresh_token"] != nil {
				t.Fatalf("%s: body %v", s.name, body)
			}
		}
	})
}
