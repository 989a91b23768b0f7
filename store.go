package permiso

import (
	"context"
	"time"
)

// Store is everything permiso persists. Each backend (sqlite, postgres)
// implements all of it and runs the storetest conformance suite, which also
// pins down these common rules:
//
//   - Create and Update return the stored row as Get would (roles, scopes
//     filled in). Update writes what the callback leaves, UpdatedAt
//     included: callers set UpdatedAt themselves.
//   - A time exactly equal to an expiry counts as expired; "since" bounds
//     are inclusive, "until" bounds exclusive.
//   - All times come back in UTC.
type Store interface {
	UserStore
	RoleStore
	ClientStore
	TokenStore
	SessionStore
	AuditStore
	ReportStore
	KeyStore
	ActionTokenStore
	OIDCStore
	MFAStore
	MFATokenStore
	ImportStore
	Migrator

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Backend names the backend ("sqlite" or "postgres").
	Backend() string
	Close() error
}

// MigrationStatus describes one migration.
type MigrationStatus struct {
	Version   int
	Name      string
	Applied   bool
	AppliedAt *time.Time
}

// Migrator applies the embedded, numbered migrations of a backend.
type Migrator interface {
	// MigrateUp applies every pending migration, each in its own
	// transaction, recording it in schema_migrations. Concurrent callers
	// (several instances starting at once) are serialized.
	MigrateUp(ctx context.Context) (applied []MigrationStatus, err error)
	// MigrateDown reverts the newest n applied migrations.
	MigrateDown(ctx context.Context, n int) (reverted []MigrationStatus, err error)
	// MigrationStatus lists every known migration and whether it is applied.
	MigrationStatus(ctx context.Context) ([]MigrationStatus, error)
}

// Pending returns the migrations in status that are not applied.
func Pending(status []MigrationStatus) []MigrationStatus {
	var p []MigrationStatus
	for _, m := range status {
		if !m.Applied {
			p = append(p, m)
		}
	}
	return p
}

// PasswordHasher hashes and verifies passwords.
type PasswordHasher interface {
	// Hash returns a PHC-format hash of password.
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches hash, and whether the hash
	// should be replaced (weaker parameters than the current ones). It
	// returns an EUNAVAILABLE error when too many hashes are running and
	// the wait for a slot exceeded its bound.
	Verify(ctx context.Context, password, hash string) (ok, needsRehash bool, err error)
}
