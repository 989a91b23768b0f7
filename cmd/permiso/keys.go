package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// cmdKeys rotates the asymmetric signing key: a new key signs from now on;
// the old ones keep verifying (and stay in the JWKS) until their last
// token has expired. Running instances pick the new key up on their next
// reload (at most a minute) or at once when they see its kid.
func cmdKeys(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("keys", "keys rotate", stdout)
	a, err := fs.open(ctx, args, env.openMigrated, "rotate")
	if a == nil {
		return err
	}
	defer a.Close()
	if a.cfg.IsSymmetric() {
		return fmt.Errorf("keys rotate: JWT_ALGORITHM=%s uses JWT_SECRET_KEY; rotate it in two rolling restarts: first the new secret in JWT_NEXT_SECRET_KEYS on every instance, then the new secret as JWT_SECRET_KEY with the old one in JWT_PREVIOUS_SECRET_KEYS (docs/deployment.md)", a.cfg.JWTAlgorithm)
	}
	signer, err := newSigner(ctx, a)
	if err != nil {
		return err
	}
	kid, err := signer.Rotate(ctx)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	fmt.Fprintf(stdout, "new %s signing key %s; older keys keep verifying until their tokens expire\n", a.cfg.JWTAlgorithm, kid)
	return nil
}

// cmdSessions is incident response: "invalidate all sessions" (the
// deployment guide). It revokes every session, refresh token and access
// token of one user (--user) or of everyone, service clients' tokens
// included.
func cmdSessions(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("sessions", "sessions revoke-all [--user ID]", stdout)
	user := fs.String("user", "", "revoke only this user's sessions (user id)")
	a, err := fs.open(ctx, args, env.openMigrated, "revoke-all")
	if a == nil {
		return err
	}
	defer a.Close()
	// The same development key as serve, so that the command runs in the
	// zero-configuration setup too.
	if _, err := a.ensureDevSecret(); err != nil {
		return err
	}
	auth, err := newAuth(ctx, a, nil)
	if err != nil {
		return err
	}
	defer auth.Close()
	if a.cfg.RedisURL == "" {
		fmt.Fprintf(stdout, "note: REDIS_URL is not set; running servers keep their in-process revocation lists, but every refresh token is revoked in the database and access tokens are rejected through the users' and service clients' revoke-all time once the servers' cache expires (CACHE_LOCAL_TTL, %s)\n", a.cfg.CacheLocalTTL)
	}

	var ids []uuid.UUID
	if *user != "" {
		id, err := uuid.Parse(*user)
		if err != nil {
			return usageError{fmt.Sprintf("sessions revoke-all: --user %q is not a user id", *user)}
		}
		if _, err := a.db.GetUser(ctx, id); errors.Is(err, permiso.ErrNotFound) {
			return fmt.Errorf("sessions revoke-all: no user %s", id)
		} else if err != nil {
			return err
		}
		ids = append(ids, id)
	} else {
		// Everyone: one global cut-off that every bearer check reads (at
		// once on every instance sharing Redis), then each user's and each
		// service client's own cut-off, sessions and refresh tokens
		// (oauth2.Service.RevokeAll).
		res, err := auth.service.RevokeAll(ctx, "revoke-all command")
		if err != nil {
			return fmt.Errorf("sessions revoke-all: %w", err)
		}
		fmt.Fprintf(stdout, "revoked %d session(s) of %d user(s) and the tokens of %d service client(s); every access token issued before %s is refused, service tokens included\n",
			res.Sessions, res.Users, res.Clients, res.Cutoff.Format("2006-01-02T15:04:05.000Z07:00"))
		return nil
	}
	total := 0
	for _, id := range ids {
		n, err := auth.service.RevokeAllForUser(ctx, id, "revoke-all command")
		if err != nil {
			return fmt.Errorf("sessions revoke-all: user %s: %w", id, err)
		}
		total += n
	}
	fmt.Fprintf(stdout, "revoked %d session(s) of %d user(s)\n", total, len(ids))
	return nil
}
