package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso/internal/testtool"
)

// TestOIDCNodeRelyingParty: openid-client, the Node relying-party library
// from npm (e2e/testdata/openid-client, installed by .ci/run with npm ci),
// completes the whole flow: discovery, authorization with PKCE and nonce
// (the test's browser signs in on the hosted page), code exchange with the
// RFC 9207 iss check and ID-token validation, userinfo, refresh, and
// RP-initiated logout, on SQLite and on PostgreSQL + Redis with two
// instances (the sign-in on one, the code exchange, refresh and userinfo
// on the other).
func TestOIDCNodeRelyingParty(t *testing.T) {
	t.Parallel()
	root := repoDir(t)
	dir := filepath.Join(root, "e2e", "testdata", "openid-client")
	node := testtool.Require(t, "node", "apt-get install -y nodejs", "CI")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client")); err != nil {
		testtool.Missing(t, "openid-client is not installed", "npm ci --prefix e2e/testdata/openid-client", "CI")
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a, _ := adminServer(t, b, nil, get(pathAuthorize))
			admin := a.login(t, adminUser, strongPassword, "").AccessToken
			secret := registerRP(t, a, admin, "rp-node", nil)
			args := []string{filepath.Join(dir, "rp.mjs"), a.URL, "rp-node", secret, rpCallback, rpSignedOut}
			if b.name != "sqlite" {
				back := startServer(t, maps2(a.Env, map[string]string{"PUBLIC_URL": a.URL}))
				args = append(args, back.URL)
			}

			cmd := exec.CommandContext(t.Context(), node, args...)
			cmd.Dir = dir
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			lines := bufio.NewScanner(stdout)
			lines.Buffer(make([]byte, 64<<10), 1<<20)
			read := func(v any) {
				t.Helper()
				if !lines.Scan() {
					select {
					case err := <-done:
						t.Fatalf("the Node relying party stopped (%v):\n%s", err, stderr.String())
					case <-time.After(5 * time.Second):
						t.Fatalf("no answer from the Node relying party:\n%s", stderr.String())
					}
				}
				if err := json.Unmarshal(lines.Bytes(), v); err != nil {
					t.Fatalf("Node relying party said %q: %v\n%s", lines.Text(), err, stderr.String())
				}
			}

			var start struct {
				Authorize string `json:"authorize"`
			}
			read(&start)
			br := newBrowser(t)
			landed := br.signIn(a.URL, br.get(start.Authorize), adminUser, strongPassword)
			landed.redirect(t)
			line, _ := json.Marshal(map[string]string{"callback": landed.header.Get("Location")})
			if _, err := stdin.Write(append(line, '\n')); err != nil {
				t.Fatal(err)
			}
			var result struct {
				Sub           string `json:"sub"`
				Email         string `json:"email"`
				EmailVerified bool   `json:"email_verified"`
				Refreshed     bool   `json:"refreshed"`
				Logout        string `json:"logout"`
			}
			read(&result)
			if err := <-done; err != nil {
				t.Fatalf("the Node relying party failed: %v\n%s", err, stderr.String())
			}
			if result.Sub == "" || result.Email != adminEmail || !result.EmailVerified || !result.Refreshed {
				t.Errorf("Node relying party result %+v", result)
			}

			// RP-initiated logout through the URL openid-client built.
			confirm := br.get(result.Logout)
			action, fields := confirm.form(t)
			out := br.post(a.URL+action, fields)
			if loc := out.header.Get("Location"); out.status != http.StatusSeeOther || loc != rpSignedOut+"?state=node-bye" {
				t.Errorf("logout: %d to %q, want 303 to %s?state=node-bye", out.status, loc, rpSignedOut)
			}
		})
	}
}
