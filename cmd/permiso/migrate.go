package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/permiso/permiso"
)

func cmdMigrate(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("migrate", "migrate up | down [N] | status", stdout)
	if help, err := parseFlags(fs.FlagSet, args); help || err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return usageError{"migrate: want up, down [N] or status"}
	}
	action, rest := args[0], args[1:]
	n := 1
	switch action {
	case "up", "status":
		if len(rest) > 0 {
			return usageError{fmt.Sprintf("migrate %s takes no arguments", action)}
		}
	case "down":
		if len(rest) > 1 {
			return usageError{"migrate down takes at most one argument"}
		}
		if len(rest) == 1 {
			v, err := strconv.Atoi(rest[0])
			if err != nil || v < 1 {
				return usageError{fmt.Sprintf("migrate down: %q is not a positive number", rest[0])}
			}
			n = v
		}
	default:
		return usageError{fmt.Sprintf("migrate: unknown action %q (want up, down [N] or status)", action)}
	}

	a, err := env.open(ctx)
	if err != nil {
		return err
	}
	defer a.Close()
	db := a.db

	switch action {
	case "up":
		applied, err := db.MigrateUp(ctx)
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		listMigrations(stdout, "applied", applied, "database is up to date")
	case "down":
		reverted, err := db.MigrateDown(ctx, n)
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		listMigrations(stdout, "reverted", reverted, "nothing to revert")
	case "status":
		status, err := db.MigrationStatus(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tSTATUS\tAPPLIED AT")
		for _, m := range status {
			state, at := "pending", ""
			if m.Applied {
				state = "applied"
				if m.AppliedAt != nil {
					at = m.AppliedAt.UTC().Format(time.RFC3339)
				}
			}
			fmt.Fprintf(tw, "%04d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
		}
		return tw.Flush()
	}
	return nil
}

// listMigrations prints a line "<verb> <version>_<name>" a migration, or
// none when there is none.
func listMigrations(stdout io.Writer, verb string, ms []permiso.MigrationStatus, none string) {
	for _, m := range ms {
		fmt.Fprintf(stdout, "%s %04d_%s\n", verb, m.Version, m.Name)
	}
	if len(ms) == 0 {
		fmt.Fprintln(stdout, none)
	}
}
