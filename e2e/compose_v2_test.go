package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFileLoadsWithComposeV2 loads deploy/docker-compose.prod.yml
// with compose-go, the loader of `docker compose` (Compose v2), as
// `docker compose -f deploy/docker-compose.prod.yml` would in a checkout
// where the operator has written deploy/.env and the secret files
// (docs/deployment.md). CI runs the stack with Debian's docker-compose 1.29
// (scripts/compose_e2e.sh); this shows the same file is valid Compose v2
// and means the same there: the services, two app instances, the build
// argument, secrets, networks and the monitoring profile.
func TestComposeFileLoadsWithComposeV2(t *testing.T) {
	t.Parallel()
	root := repoDir(t)
	// A copy of deploy/ with what the operator adds: .env and the secrets.
	dir := t.TempDir()
	deploy := filepath.Join(dir, "deploy")
	if err := os.CopyFS(deploy, os.DirFS(filepath.Join(root, "deploy"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deploy, ".env"), []byte(readRepoFile(t, "e2e/testdata/guide.env")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(deploy, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"jwt_secret", "jwt_next_secret", "jwt_previous_secret", "db_password", "redis_password"} {
		if err := os.WriteFile(filepath.Join(deploy, "secrets", name), []byte(randomHex(t, 16)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		profiles []string
		services []string
	}{
		{nil, []string{"app", "db", "nginx", "redis"}},
		{[]string{"monitoring"}, []string{"app", "db", "grafana", "nginx", "prometheus", "redis"}},
	} {
		opts, err := cli.NewProjectOptions([]string{filepath.Join(deploy, "docker-compose.prod.yml")},
			cli.WithWorkingDirectory(deploy), cli.WithDotEnv, cli.WithProfiles(tc.profiles), cli.WithConsistency(true))
		if err != nil {
			t.Fatal(err)
		}
		p, err := opts.LoadProject(context.Background())
		if err != nil {
			t.Fatalf("profiles %v: Compose v2 refuses the file: %v", tc.profiles, err)
		}
		if got := p.ServiceNames(); !slices.Equal(slices.Sorted(slices.Values(got)), tc.services) {
			t.Errorf("profiles %v: services %v, want %v", tc.profiles, got, tc.services)
		}
		app, err := p.GetService("app")
		if err != nil {
			t.Fatal(err)
		}
		if app.GetScale() != 2 {
			t.Errorf("app scale %d, want 2 instances", app.GetScale())
		}
		if app.Build == nil || app.Build.Args["VERSION"] == nil || *app.Build.Args["VERSION"] == "" ||
			app.Build.Dockerfile != "deploy/Dockerfile" || app.Build.Context != dir {
			t.Errorf("app build %+v", app.Build)
		}
		if len(app.Ports) != 0 {
			t.Errorf("app publishes %v: nginx must be the only way in", app.Ports)
		}
		env := app.Environment
		// The compose file's environment wins over .env: the guide's
		// JWT_SECRET_KEY and REDIS_PASSWORD are blanked for the *_FILE ones.
		for k, want := range map[string]string{"ENVIRONMENT": "production", "JWT_SECRET_KEY": "",
			"REDIS_PASSWORD": "", "JWT_SECRET_KEY_FILE": "/run/secrets/jwt_secret", "AUTO_MIGRATE": "false"} {
			if v := env[k]; v == nil || *v != want {
				t.Errorf("app %s = %v, want %q", k, v, want)
			}
		}
		for _, s := range []string{"jwt_secret", "db_password", "redis_password"} {
			if !slices.ContainsFunc(app.Secrets, func(c types.ServiceSecretConfig) bool { return c.Source == s }) {
				t.Errorf("app lacks secret %s", s)
			}
		}
		if _, ok := app.Networks["monitoring"]; !ok {
			t.Errorf("app is not on the monitoring network (Prometheus scrapes /metrics there)")
		}
	}
}
