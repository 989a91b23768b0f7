package oauth2

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// errCredentialsChanged answers a login that raced a password change, a
// revoke-all or a disabling of the account: the password was right when it
// was checked, so saying so reveals nothing.
var errCredentialsChanged = ErrInvalidGrant.WithDescription("The account changed during the login; sign in again")

// recheckLogin closes the window between the password check and the
// issuance of a login: it re-reads the user after the session and refresh
// token were created and, when the password hash is no longer the one
// verified, the account was disabled, or TokensRevokedBefore moved past the
// authentication time (a revoke-all that started after this login read the
// user), it ends the new session (store and revocation store) and answers
// invalid_grant. Whichever of the two writers comes second sees the other:
// either RevokeAllForUser finds the new session, or this re-read finds the
// change.
func (s *Service) recheckLogin(ctx context.Context, g *grant, sid uuid.UUID, meta RequestMeta) error {
	// From the database itself: an in-process cache may lag another
	// instance's revoke-all by the time its invalidation takes to arrive,
	// which is exactly the window this re-check closes.
	cur, err := s.deps.Users.GetUser(permiso.WithFreshRead(ctx), g.user.ID)
	reason := ""
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		reason = "user_deleted"
	case err != nil:
		s.abandonLogin(ctx, sid)
		return err
	case !cur.IsActive:
		reason = "account_disabled"
	case cur.PasswordHash != g.user.PasswordHash:
		reason = "password_changed"
	case cur.TokensRevokedBefore != nil && cur.TokensRevokedBefore.After(g.authTime):
		reason = "tokens_revoked"
	}
	if reason == "" {
		return nil
	}
	// Ended even when the client went away meanwhile (compensating): the
	// raced change must win.
	cctx, cancel := compensating(ctx)
	defer cancel()
	if err := s.endSession(cctx, sid, "login_raced_"+reason, s.now()); err != nil {
		return err
	}
	s.auditUser(ctx, meta, *g.user, ActionLoginFailure, "failure", map[string]any{"reason": "credentials_changed", "detail": reason, "session_id": sid.String()})
	return errCredentialsChanged
}

// abandonLogin ends a session whose login could not be confirmed (its
// tokens are never delivered). It is compensating work: it runs to its
// end, within compensationTimeout, even when the client went away, which
// is the common cause (the re-check's read cancelled with the request).
// Best effort: a failure is logged.
func (s *Service) abandonLogin(ctx context.Context, sid uuid.UUID) {
	cctx, cancel := compensating(ctx)
	defer cancel()
	if err := s.endSession(cctx, sid, "login_failed", s.now()); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "revoking an unconfirmed session failed", slog.String("session_id", sid.String()), slog.String("error", err.Error()))
	}
}
