package oauth2_test

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/oauth2"
)

// importedClient creates a client whose secret hash is an Argon2id PHC
// string, as permiso import carries it over from the original service.
func (e *env) importedClient(clientID string, mutate func(*permiso.ServiceClient)) (permiso.ServiceClient, string) {
	e.t.Helper()
	secret := "original-secret-" + clientID
	hash := testwire.Hash(e.t, e.hasher, secret)
	c, _ := e.createClient(clientID, func(c *permiso.ServiceClient) {
		c.SecretHash = hash
		if mutate != nil {
			mutate(c)
		}
	}, "read:profile")
	return c, secret
}

func (e *env) secretHash(c permiso.ServiceClient) string {
	e.t.Helper()
	got, err := e.db.GetServiceClient(e.ctx, c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got.SecretHash
}

// TestImportedClientSecretIsUpgraded: an imported Argon2id client hash
// authenticates its old secret once through the hasher and is then
// replaced by permiso's SHA-256 of it; the secret keeps working.
func TestImportedClientSecretIsUpgraded(t *testing.T) {
	e := newEnv(t)
	c, secret := e.importedClient("mt5-service", nil)
	form := url.Values{"grant_type": {"client_credentials"}}

	_, err := e.token(form, basic("mt5-service", "not-the-secret"))
	wantOAuth(t, err, "invalid_client", http.StatusUnauthorized)
	if got := e.secretHash(c); got != c.SecretHash {
		t.Fatalf("a wrong secret changed the stored hash to %q", got)
	}

	resp := e.mustToken(form, basic("mt5-service", secret))
	if resp.AccessToken == "" || resp.Scope != "read:profile" {
		t.Fatalf("token response %+v", resp)
	}
	if got := e.secretHash(c); got != permiso.HashToken(secret) {
		t.Fatalf("stored hash after the first authentication = %q, want the SHA-256 of the secret", got)
	}
	// From now on the fast path: the secret still works, form-encoded
	// client_secret too, and a wrong one still fails.
	e.mustToken(form, basic("mt5-service", secret))
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {"mt5-service"}, "client_secret": {secret}}
	e.mustToken(f, "")
	_, err = e.token(form, basic("mt5-service", "not-the-secret"))
	wantOAuth(t, err, "invalid_client", http.StatusUnauthorized)
}

// TestImportedClientSecretRefusals: an inactive imported client, or one
// whose hash cannot be read, fails like any other client, and its hash is
// left as it is.
func TestImportedClientSecretRefusals(t *testing.T) {
	e := newEnv(t)
	inactive, secret := e.importedClient("inactive", func(c *permiso.ServiceClient) { c.IsActive = false })
	broken, _ := e.importedClient("broken", func(c *permiso.ServiceClient) { c.SecretHash = "$argon2id$v=19$m=65536,t=3,p=1$broken" })
	form := url.Values{"grant_type": {"client_credentials"}}

	_, err := e.token(form, basic("inactive", secret))
	wantOAuth(t, err, "invalid_client", http.StatusUnauthorized)
	if got := e.secretHash(inactive); got != inactive.SecretHash {
		t.Errorf("an inactive client's hash was replaced")
	}
	_, err = e.token(form, basic("broken", "anything"))
	wantOAuth(t, err, "invalid_client", http.StatusUnauthorized)
	if got := e.secretHash(broken); got != broken.SecretHash {
		t.Errorf("an unreadable hash was replaced")
	}
}

// TestImportedPreviousSecretDuringOverlap: a secret rotated before the
// imported client first authenticated leaves the Argon2id hash as the
// previous secret; it works until the overlap ends, and is never made the
// current one.
func TestImportedPreviousSecretDuringOverlap(t *testing.T) {
	e := newEnv(t)
	c, oldSecret := e.importedClient("svc", nil)
	newSecret := e.rotateSecret(c, time.Hour)
	form := url.Values{"grant_type": {"client_credentials"}}
	for _, s := range []string{oldSecret, newSecret, oldSecret} {
		if _, err := e.token(form, basic("svc", s)); err != nil {
			t.Fatalf("during the overlap: %v", err)
		}
	}
	if got := e.secretHash(c); got != permiso.HashToken(newSecret) {
		t.Errorf("current hash = %q, want the rotated one", got)
	}
	e.clock.Advance(time.Hour)
	_, err := e.token(form, basic("svc", oldSecret))
	wantOAuth(t, err, "invalid_client", http.StatusUnauthorized)
}

// countingHasher counts the verifications of the hasher it wraps.
type countingHasher struct {
	oauth2.Hasher
	verifies atomic.Int32
}

func (h *countingHasher) Verify(ctx context.Context, password, hash string) (bool, bool, error) {
	h.verifies.Add(1)
	return h.Hasher.Verify(ctx, password, hash)
}

// TestImportedSecretLimitsFirst: the request's rate limits are counted
// before an imported hash is verified, so a flood answered 429 costs no
// Argon2id work and upgrades nothing.
func TestImportedSecretLimitsFirst(t *testing.T) {
	var counting *countingHasher
	e := newEnv(t, withAbuse(5), func(_ *oauth2.Config, d *oauth2.Deps) {
		counting = &countingHasher{Hasher: d.Hasher}
		d.Hasher = counting
	})
	c, secret := e.importedClient("lim", nil)
	limit := permiso.Limit{Count: 1, Period: time.Minute}
	send := func(secret string) (permiso.LimitCheck, error) {
		limits := &permiso.Limits{}
		limits.Add(permiso.LimitCheck{Key: "ip:service_token:192.0.2.10", Limit: limit})
		req, err := oauth2.ParseTokenRequest(url.Values{"grant_type": {"client_credentials"}}, basic("lim", secret))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Token(e.ctx, req, testMeta, limits)
		return limits.Checks()[0], err
	}
	check, err := send("wrong")
	wantOAuth(t, err, "invalid_client", http.StatusUnauthorized)
	if !check.Ran || !check.Result.Allowed || counting.verifies.Load() != 1 {
		t.Fatalf("first request: check %+v, %d verifications; want allowed and 1", check, counting.verifies.Load())
	}
	check, err = send(secret)
	wantOAuth(t, err, "rate_limit_exceeded", http.StatusTooManyRequests)
	if !check.Ran || check.Result.Allowed {
		t.Fatalf("second request: check %+v, want refused", check)
	}
	if n := counting.verifies.Load(); n != 1 {
		t.Errorf("%d verifications after a request refused by its limits, want still 1", n)
	}
	if got := e.secretHash(c); got != c.SecretHash {
		t.Errorf("a request refused by its limits replaced the hash")
	}
}
