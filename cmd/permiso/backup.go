package main

import (
	"context"
	"fmt"
	"io"
)

// cmdBackup writes a consistent copy of the database to --out: an online
// SQLite copy (VACUUM INTO) or a pg_dump of PostgreSQL.
func cmdBackup(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("backup", "backup --out FILE", stdout)
	out := fs.String("out", "", "file to write the backup to (required; must not exist for SQLite)")
	if help, err := fs.parse(args); help || err != nil {
		return err
	}
	if *out == "" {
		return usageError{"backup: --out FILE is required"}
	}
	a, err := env.open(ctx)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.db.Backup(ctx, *out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s\n", *out)
	return nil
}
