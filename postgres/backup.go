package postgres

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/permiso/permiso"
)

// Backup writes a plain-SQL dump of the database to outPath by running
// pg_dump (which must be on PATH and should be at least as new as the
// server). The connection parameters are handed to pg_dump through the
// PG* environment variables, so the password never appears on a command
// line or in an error message. With a SearchPath, only its first schema is
// dumped.
func (db *DB) Backup(ctx context.Context, outPath string) error {
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		return permiso.Wrap(permiso.EUNAVAILABLE, "pg_dump is not installed or not on PATH", err)
	}
	args := []string{"--no-password", "--format=plain", "--file=" + outPath}
	if s := firstSchema(db.search); s != "" {
		args = append(args, "--schema="+s)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(pgEnvFiltered(os.Environ()), db.pgEnv()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if pw := db.cfg.ConnConfig.Password; pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		_ = os.Remove(outPath)
		return fmt.Errorf("postgres: pg_dump failed: %w: %s", err, msg)
	}
	return nil
}

// pgEnv returns libpq environment variables describing this DB's
// connection.
func (db *DB) pgEnv() []string {
	c := db.cfg.ConnConfig
	env := []string{
		"PGHOST=" + c.Host,
		"PGPORT=" + strconv.Itoa(int(c.Port)),
		"PGDATABASE=" + c.Database,
		"PGUSER=" + c.User,
	}
	if c.Password != "" {
		env = append(env, "PGPASSWORD="+c.Password)
	}
	// TLS settings are taken from the URL as written (libpq understands the
	// same names); without them libpq's default (prefer) applies, as in pgx.
	if u, err := url.Parse(db.url); err == nil {
		q := u.Query()
		for param, name := range map[string]string{
			"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
			"sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
		} {
			if v := q.Get(param); v != "" {
				env = append(env, name+"="+v)
			}
		}
	}
	return env
}

// pgEnvFiltered drops any inherited PG* variable so that only this DB's
// parameters reach pg_dump.
func pgEnvFiltered(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PG") {
			out = append(out, kv)
		}
	}
	return out
}

// firstSchema returns the first schema named in a search_path value.
func firstSchema(searchPath string) string {
	first, _, _ := strings.Cut(searchPath, ",")
	return strings.Trim(strings.TrimSpace(first), `"`)
}
