package oauth2

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Client secrets imported from the original service (permiso import,
// docs/migrating.md) are stored as the original stored them: Argon2id PHC
// strings, not the SHA-256 that permiso keeps of the 256-bit secrets it
// generates itself. Such a secret is checked through the password hasher
// (one Argon2id verification, bounded like a login by the hasher's slots)
// and, on the first success, replaced by its SHA-256: from then on the
// client authenticates with the fast constant-time compare. The slow check
// thus happens once per imported client (again only if the replacement
// could not be written). Because it is slow, the request's rate limits are
// counted before it.

// isImportedSecretHash reports whether a stored client secret hash is an
// imported Argon2 hash rather than permiso's SHA-256 hex.
func isImportedSecretHash(hash string) bool { return strings.HasPrefix(hash, "$argon2") }

// hasImportedSecret reports whether authenticating c may need the slow
// check: its secret, or the previous one still in its overlap, is an
// imported hash.
func hasImportedSecret(c permiso.ServiceClient, active bool) bool {
	return isImportedSecretHash(c.SecretHash) || (active && isImportedSecretHash(*c.PreviousSecretHash))
}

// secretMatches reports whether secret (whose SHA-256 is presented)
// matches the stored hash: a constant-time compare of SHA-256 hashes, or
// an Argon2id verification for an imported hash. Only a busy hasher is an
// error (EUNAVAILABLE); an unreadable imported hash is logged and matches
// nothing.
func (s *Service) secretMatches(ctx context.Context, secret string, presented *permiso.TokenHash, stored string, clientID string) (bool, error) {
	if !isImportedSecretHash(stored) {
		return permiso.EqualTokenHash(presented, stored), nil
	}
	if s.deps.Hasher == nil {
		return false, nil
	}
	ok, _, err := s.deps.Hasher.Verify(ctx, secret, stored)
	if err != nil {
		if permiso.ErrorCode(err) == permiso.EUNAVAILABLE {
			return false, err
		}
		s.log.LogAttrs(ctx, slog.LevelError, "unreadable imported client secret hash",
			slog.String("client_id", clientID), slog.String("error", err.Error()))
		return false, nil
	}
	return ok, nil
}

var errSecretChanged = errors.New("oauth2: the client secret changed meanwhile")

// upgradeImportedSecret replaces the imported hash of the client by the
// SHA-256 of the secret just verified against it, unless the stored hash
// changed meanwhile (a rotation wins). A failure is logged; the next
// authentication checks the imported hash again.
func (s *Service) upgradeImportedSecret(ctx context.Context, id uuid.UUID, imported, secret string) {
	_, err := s.deps.Clients.UpdateServiceClient(ctx, id, func(c *permiso.ServiceClient) error {
		if c.SecretHash != imported {
			return errSecretChanged
		}
		c.SecretHash = permiso.HashToken(secret)
		return nil
	})
	if err != nil && !errors.Is(err, errSecretChanged) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "replacing an imported client secret hash failed",
			slog.String("client_id", id.String()), slog.String("error", err.Error()))
	}
}
