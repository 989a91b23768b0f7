package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestUserResponseAppendJSONIsMarshal holds userResponse.AppendJSON, the
// encoder of GET /users/me and the other user answers, to the bytes
// json.Marshal writes: every field set, none set, nil and empty lists, and
// strings json.Marshal escapes.
func TestUserResponseAppendJSONIsMarshal(t *testing.T) {
	odd := "a<b>&c\"d\\e\u2028f\x01g\ufffdé😀\xff"
	desc := "role <desc>"
	login := "2026-12-06T19:00:00.123456789Z"
	full := userResponse{
		ID: "0b1f7a2e-6a55-4c8e-9d1e-0c3b8e0f4a11", Username: "alice", Email: "alice@example.com",
		FirstName: &odd, LastName: &desc, DisplayName: &odd, Bio: &odd,
		IsActive: true, IsVerified: true, IsSuperuser: true, FullName: odd, LastLogin: &login,
		CreatedAt: login, UpdatedAt: login,
		Roles:      []roleInfo{{ID: "r1", Name: "admin", Description: &desc}, {ID: "r2", Name: odd}},
		ScopeNames: []string{"read:profile", odd}, Scopes: []string{"read:profile", odd},
	}
	empty := userResponse{Roles: []roleInfo{}, ScopeNames: []string{}, Scopes: []string{}}
	for name, u := range map[string]userResponse{"full": full, "zero": {}, "empty lists": empty} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(u)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.AppendJSON(nil); !bytes.Equal(got, want) {
				t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
			}
		})
	}
}
