package httpapi

import (
	"testing"

	"github.com/permiso/permiso/internal/jsonappend/jsonappendtest"
)

// TestUserResponseAppendJSONIsMarshal holds userResponse.AppendJSON, the
// encoder of GET /users/me and the other user answers, to the bytes
// json.Marshal writes: every field set, none set, nil and empty lists, and
// strings json.Marshal escapes.
func TestUserResponseAppendJSONIsMarshal(t *testing.T) {
	odd := jsonappendtest.Odd
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
	jsonappendtest.IsMarshal(t, map[string]userResponse{"full": full, "zero": {}, "empty lists": empty}, userResponse.AppendJSON)
}
