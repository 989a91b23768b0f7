// Package testtool finds the programs some tests run (redis-server,
// Chromium, logrotate, ...): a test skips where the program is not
// installed, and fails instead where the environment says it must be
// there (CI, where .ci/run installs it).
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of the program name. When it is not on PATH
// the test fails if any of the environment variables requiredBy is set,
// and is skipped otherwise; either way the message names the program and
// install, how to get it.
func Require(t testing.TB, name, install string, requiredBy ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, env := range requiredBy {
		if os.Getenv(env) != "" {
			t.Fatalf("%s is not on PATH and %s is set (%s)", name, env, install)
		}
	}
	t.Skipf("%s is not on PATH (%s)", name, install)
	return ""
}
