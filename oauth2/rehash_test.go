package oauth2_test

import (
	"strings"
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/oauth2"
)

// TestPasswordRehashToLowerCosts: after an operator lowers the Argon2id
// costs, a user's stronger hash verifies and is replaced at the next login
// by one with the configured costs (docs/security-model.md, "Password
// hashing").
func TestPasswordRehashToLowerCosts(t *testing.T) {
	e := newEnv(t, func(_ *oauth2.Config, d *oauth2.Deps) {
		d.Hasher = argon2id.New(argon2id.Options{Params: argon2id.TestParams()})
	})
	stronger := argon2id.TestParams()
	stronger.Memory, stronger.Time = 2*stronger.Memory, 2
	hash, err := argon2id.New(argon2id.Options{Params: stronger}).Hash(e.ctx, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	u := e.createUser("alice", "placeholder-Password-1", permiso.RoleUser)
	if _, err := e.db.UpdateUser(e.ctx, u.ID, func(u *permiso.User) error { u.PasswordHash = hash; return nil }); err != nil {
		t.Fatal(err)
	}
	e.login("alice", goodPassword, "")
	got, _ := e.db.GetUser(e.ctx, u.ID)
	if got.PasswordHash == hash || !strings.Contains(got.PasswordHash, "$m=64,t=1,p=1$") {
		t.Fatalf("hash not brought to the configured costs: %s", got.PasswordHash)
	}
	e.login("alice", goodPassword, "") // the new hash verifies
}
