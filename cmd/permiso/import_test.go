package main

import (
	"strings"
	"testing"
)

func TestImportCommandLine(t *testing.T) {
	env := baseEnv(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"import"}, 2, "--from"},
		{[]string{"import", "--from", "postgresql://h/db", "extra"}, 2, "unexpected argument"},
		{[]string{"import", "--from", "postgresql://h/db", "--batch-size", "0"}, 2, "--batch-size"},
		{[]string{"import", "--from", "sqlite://old.db"}, 1, "PostgreSQL"},
	} {
		_, _, err := runCmd(t, env, "", c.args...)
		if err == nil || exitCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("permiso %s: %v (exit %d), want exit %d mentioning %q", strings.Join(c.args, " "), err, exitCode(err), c.code, c.want)
		}
	}
	out, _, err := runCmd(t, env, "", "import", "--help")
	if err != nil || !strings.Contains(out, "--dry-run") || !strings.Contains(out, "--from") {
		t.Errorf("import --help: %v\n%s", err, out)
	}
	out, _, _ = runCmd(t, env, "", "--help")
	if !strings.Contains(out, "import --from DATABASE_URL") {
		t.Errorf("usage does not list import:\n%s", out)
	}
}

// TestServeRefusesPerInstanceIssuerInProduction: with the deployment
// guide's non-URL JWT_ISSUER and no PUBLIC_URL, production refuses to
// start, naming both variables.
func TestServeRefusesPerInstanceIssuerInProduction(t *testing.T) {
	env := testEnv{"ENVIRONMENT": "production", "JWT_SECRET_KEY": strings.Repeat("k9", 24),
		"DATABASE_URL": "postgresql://permiso@127.0.0.1:1/permiso", "JWT_ISSUER": "permiso-auth-prod"}
	_, _, err := runCmd(t, env, "", "serve")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "JWT_ISSUER") || !strings.Contains(err.Error(), "PUBLIC_URL") {
		t.Fatalf("serve: %v (exit %d), want exit 1 naming JWT_ISSUER and PUBLIC_URL", err, exitCode(err))
	}
}
