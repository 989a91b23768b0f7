package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/importer"
)

// cmdImport is `permiso import --from DATABASE_URL [--dry-run]`: it
// carries an installation of the original service over into the database
// named by DATABASE_URL (docs/migrating.md). Progress goes to stderr, the
// summary to stdout.
func cmdImport(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("import", "import --from DATABASE_URL [--dry-run] [--batch-size N]", stdout)
	from := fs.String("from", "", "the original service's PostgreSQL URL (its DATABASE_URL; postgresql+asyncpg:// is accepted) (required)")
	dryRun := fs.Bool("dry-run", false, "print what would be imported and change nothing")
	batchSize := fs.Int("batch-size", importer.DefaultBatchSize, "rows written per transaction")
	if help, err := fs.parse(args); help || err != nil {
		return err
	}
	if strings.TrimSpace(*from) == "" {
		return usageError{"import: --from DATABASE_URL (the original service's database) is required"}
	}
	if *batchSize < 1 {
		return usageError{"import: --batch-size must be at least 1"}
	}
	if _, err := importer.NormalizeURL(*from); err != nil {
		return fmt.Errorf("import: --from: %w", err)
	}

	a, err := env.open(ctx)
	if err != nil {
		return err
	}
	defer a.Close()
	if *dryRun {
		// A dry run writes nothing, not even migrations.
		status, err := a.db.MigrationStatus(ctx)
		if err != nil {
			return fmt.Errorf("import: read migration status: %w", err)
		}
		if p := permiso.Pending(status); len(p) > 0 {
			return fmt.Errorf("import: %d database migration(s) pending; a dry run changes nothing, so run `permiso migrate up` first", len(p))
		}
	} else if err := applyMigrations(ctx, a.cfg, a.db); err != nil {
		return fmt.Errorf("import: %w", err)
	}

	orig, err := importer.Read(ctx, *from, env.stderr)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	hasher := newHasher(a.cfg, 1)
	plan, err := importer.NewPlan(ctx, orig, a.db, importer.Options{
		CheckHash:              hasher.Check,
		CheckAllowedIPs:        func(list string) error { _, err := permiso.ParseAllowedIPs(list); return err },
		MaxAccessTokenLifetime: maxClientTokenLifetime,
		BatchSize:              *batchSize,
	})
	var probs importer.Problems
	if errors.As(err, &probs) {
		return fmt.Errorf("import: %d value(s) of the original cannot be carried over; nothing was written. Fix them in the original database and run the import again:\n%w", len(probs), probs)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}

	printPlan(stdout, plan, *dryRun)
	switch {
	case plan.Add.Total() == 0:
		fmt.Fprintln(stdout, "Nothing to import: permiso already holds every row and link of the original; nothing was changed.")
		return nil
	case *dryRun:
		fmt.Fprintln(stdout, "Dry run: nothing was written.")
		return nil
	}
	written, err := plan.Apply(ctx, a.db, env.stderr)
	if err != nil {
		return fmt.Errorf("import: %w; the batches before it are written, and running the import again writes the rest", err)
	}
	fmt.Fprintf(stdout, "Imported %d rows and links (%d users, %d roles, %d scopes, %d service clients).\n",
		written.Total(), written.Users, written.Roles, written.Scopes, written.Clients)
	fmt.Fprintln(stdout, "Users sign in with their old passwords (their hashes are upgraded then); service clients keep their secrets (each is verified once with Argon2id, then stored as permiso's fast hash).")
	return nil
}

// printPlan prints, per table, what the original holds, what the import
// adds and what permiso already has, then what is not carried over.
func printPlan(w io.Writer, p *importer.Plan, dryRun bool) {
	verb := "to add"
	if dryRun {
		verb = "would add"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "table\tin the original\t%s\talready in permiso\t\n", verb)
	for _, r := range []struct {
		name      string
		orig, add int
	}{
		{"scopes", p.Original.Scopes, p.Add.Scopes},
		{"roles", p.Original.Roles, p.Add.Roles},
		{"role_scopes", p.Original.RoleScopes, p.Add.RoleScopes},
		{"users", p.Original.Users, p.Add.Users},
		{"user_roles", p.Original.UserRoles, p.Add.UserRoles},
		{"service_clients", p.Original.Clients, p.Add.Clients},
		{"service_client_scopes", p.Original.ClientScopes, p.Add.ClientScopes},
	} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", r.name, r.orig, r.add, r.orig-r.add)
	}
	tw.Flush()
	if len(p.MatchedRoles) > 0 || len(p.MatchedScopes) > 0 {
		fmt.Fprintf(w, "Roles and scopes matched by name (reused, never duplicated): roles %s; scopes %s.\n", list(p.MatchedRoles), list(p.MatchedScopes))
	}
	n := p.NotCarried
	fmt.Fprintf(w, "Not carried over: %d sessions and %d refresh tokens (users log in again), %d pending password-reset and %d pending email-verification tokens (request them again).\n",
		n.Sessions, n.RefreshTokens, n.PendingResets, n.PendingVerifications)
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
