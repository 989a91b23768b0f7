// Package testtool finds the programs some tests run (redis-server,
// Chromium, logrotate, ...): a test skips where the program (or what else
// it needs) is not installed, and fails instead where the environment says
// it must be there (CI, where .ci/run installs it).
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of the program name. When it is not on PATH
// the test fails if any of the environment variables requiredBy is set,
// and is skipped otherwise (Missing); either way the message names the
// program and install, how to get it.
func Require(t testing.TB, name, install string, requiredBy ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not on PATH", install, requiredBy...)
	}
	return path
}

// Missing ends a test that lacks something it runs (what, as "X is not on
// PATH"): it fails if any of the environment variables requiredBy is set,
// and is skipped otherwise; the message says install, how to get it.
func Missing(t testing.TB, what, install string, requiredBy ...string) {
	t.Helper()
	for _, env := range requiredBy {
		if os.Getenv(env) != "" {
			t.Fatalf("%s and %s is set (%s)", what, env, install)
		}
	}
	t.Skipf("%s (%s)", what, install)
}
