package httpapi

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/audit"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/inprocess"
	"github.com/permiso/permiso/internal/testwire"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/logring"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/reports"
	"github.com/permiso/permiso/usage"
)

// testMFAKeyFill fills the MFA_ENCRYPTION_KEY of the test servers.
const testMFAKeyFill = 0x5a

// wiring is what the test servers built by newWired differ in. newWired
// wires the rest as cmd/permiso does: the store keeps users, clients,
// tokens, sessions and second factors, argon2id hashes with its test
// parameters, the HS256 signer of apiTestSecret signs access tokens,
// revocations are in-process unless authDeps names others, and the
// identity service signs users in, locks them out and revokes client
// tokens through the OAuth core.
type wiring struct {
	// db is the store, migrated.
	db permiso.Store
	// logged sends the error records of the services and the server to a
	// ring shown by the server (wired.ring); audited adds the batched audit
	// writer (flushing every 10 ms) and the reports over what it writes,
	// counted the usage counter.
	logged, audited, counted bool
	// logTo, when set, also receives every record of the services and
	// the server (the ring keeps the error records, as with logged).
	logTo slog.Handler
	// auth configures the OAuth core (Issuer defaults to permiso-test);
	// with auth.OIDCIssuer set the core signs ID tokens (testIDSigner).
	auth oauth2.Config
	// authDeps are the OAuth core's further dependencies (lockout,
	// limiter, shared state).
	authDeps oauth2.Deps
	// ident configures the identity service, identDeps are its further
	// dependencies (mailer, limiter); noIdentity leaves the service out
	// (the server then answers the OAuth routes only).
	noIdentity bool
	ident      identity.Config
	identDeps  identity.Deps
	// once remembers the one-time passwords accepted; nil: in-process.
	once permiso.OnceStore
	// mfaSignIn has the OAuth core ask second factors at sign-in;
	// mfaGrant also keeps the mfa_tokens of the mfa grant.
	mfaSignIn, mfaGrant bool
	// options adjusts testOptions.
	options func(*Options)
	// deps are the server's further dependencies (limiter, checks).
	deps Deps
}

// wired is a test server on real parts and the parts it is made of.
type wired struct {
	db     permiso.Store
	auth   *oauth2.Service
	ident  *identity.Service // nil with wiring.noIdentity
	mfa    identity.MFADeps
	signer *jwt.Signer
	hasher *argon2id.Hasher
	audit  *audit.Writer  // nil unless wiring.audited
	usage  *usage.Counter // nil unless wiring.counted
	ring   *logring.Ring  // nil unless wiring.logged
	logger *slog.Logger   // nil unless wiring.logged
	srv    *server
	h      http.Handler
}

// newWired builds the server w describes; the services it starts are
// closed when tb ends.
func newWired(tb testing.TB, w wiring) *wired {
	tb.Helper()
	db := w.db
	s := &wired{db: db, signer: testSigner(tb), hasher: testwire.Hasher()}
	if w.logged || w.logTo != nil {
		to := w.logTo
		if to == nil {
			to = slog.DiscardHandler
		}
		s.ring = logring.New(100, slog.LevelError)
		s.logger = slog.New(s.ring.Wrap(to))
	}
	s.mfa = identity.MFADeps{Store: db, Box: testwire.Box(tb, testMFAKeyFill), Once: w.once, Issuer: "permiso"}
	if s.mfa.Once == nil {
		s.mfa.Once = inprocess.NewOnce()
	}

	if w.auth.Issuer == "" {
		w.auth.Issuer = "permiso-test"
	}
	ad := &w.authDeps
	ad.Users, ad.Clients, ad.Tokens, ad.Sessions = db, db, db, db
	ad.Hasher, ad.Signer, ad.Logger = s.hasher, s.signer, s.logger
	if ad.Revocations == nil {
		ad.Revocations = inprocess.NewRevocations()
	}
	if w.audited {
		s.audit = audit.New(db, audit.Options{FlushInterval: 10 * time.Millisecond, Logger: s.logger})
		ad.Audit = s.audit
	}
	if w.counted {
		s.usage = usage.New(db, usage.Options{FlushInterval: time.Hour, Logger: s.logger})
		ad.Usage = s.usage
	}
	if w.auth.OIDCIssuer != "" {
		ad.OIDC, ad.IDTokens = db, testIDSigner(tb, db)
	}
	if w.mfaSignIn || w.mfaGrant {
		ad.MFA = oauth2.MFADeps{Store: db, Box: s.mfa.Box, Once: s.mfa.Once}
	}
	if w.mfaGrant {
		ad.MFA.Tokens = db
	}
	s.auth = oauth2.NewService(w.auth, *ad)

	if !w.noIdentity {
		id := &w.identDeps
		id.Store, id.Hasher, id.Sessions, id.Lockout, id.ClientTokens = db, s.hasher, s.auth, s.auth, s.auth
		id.Audit, id.Logger, id.MFA = ad.Audit, s.logger, s.mfa
		s.ident = identity.New(w.ident, *id)
	}
	tb.Cleanup(func() {
		if s.ident != nil {
			s.ident.Close()
		}
		if s.usage != nil {
			s.usage.Close()
		}
		if s.audit != nil {
			s.audit.Close()
		}
	})

	opts := testOptions()
	if w.options != nil {
		w.options(&opts)
	}
	d := w.deps
	d.Options, d.Auth, d.Keys, d.Store = opts, s.auth, s.signer, db
	if s.ident != nil {
		d.Identity = s.ident
	}
	d.Logger, d.ErrorLog = s.logger, s.ring
	if s.audit != nil {
		d.Audit, d.Reports = s.audit, reports.New(reports.Deps{Store: db})
	}
	s.h = NewServer(d)
	s.srv = s.h.(*server)
	return s
}

// activeUser creates the active, verified user name (name@example.com)
// with the password hash and the roles, its password changed now.
func activeUser(tb testing.TB, db permiso.Store, name, hash string, superuser bool, roles ...permiso.Role) permiso.User {
	tb.Helper()
	var ids []uuid.UUID
	for _, r := range roles {
		ids = append(ids, r.ID)
	}
	now := time.Now().UTC()
	u, err := db.CreateUser(tb.Context(), permiso.User{Username: name, Email: name + "@example.com", PasswordHash: hash,
		IsActive: true, IsVerified: true, IsSuperuser: superuser, PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now}, ids)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}
