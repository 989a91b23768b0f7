package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/permiso/permiso/internal/testtool"
)

// TestDeploymentScripts runs the operator scripts of scripts/ (the
// deployment guide's health check and smoke tests) against a real server,
// so they stay true.
func TestDeploymentScripts(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "python3"} {
		testtool.Require(t, tool, "apt-get install -y "+tool, "CI")
	}
	root := repoDir(t)
	b := sqliteOnly(t)
	s := startServer(t, b.env(t, nil))
	const password = "Deploy-Check-Passw0rd!"
	s.createAdmin(t, "smoke", "smoke@example.com", password)

	run := func(script string, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{filepath.Join(root, "scripts", script)}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s failed: %v\n%s", script, err, out)
		}
		return string(out)
	}
	if out := run("health_check.sh", nil, s.URL+"/health"); !strings.Contains(out, "Health check passed") {
		t.Fatalf("health_check.sh: %s", out)
	}
	out := run("smoke_tests.sh", []string{"BASE_URL=" + s.URL, "ADMIN_USER=smoke", "ADMIN_PASSWORD=" + password})
	if !strings.Contains(out, "smoke tests passed") || !strings.Contains(out, "ok   logout revokes at once") {
		t.Fatalf("smoke_tests.sh: %s", out)
	}
	// A failing health check exits non-zero.
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "health_check.sh"), s.URL+"/no-such-path")
	if err := cmd.Run(); err == nil {
		t.Fatal("health_check.sh exited 0 for a 404")
	}
}
