package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/jsonappend/jsonappendtest"
)

// TestUserAnswerIsUserView holds userAnswer, the encoder of GET
// /users/me, to the bytes json.Marshal writes for userView of the same
// user: every field set (times in another zone, with and without
// nanoseconds), none set, roles without scopes, and strings json.Marshal
// escapes.
func TestUserAnswerIsUserView(t *testing.T) {
	odd := jsonappendtest.Odd
	desc := "role <desc>"
	first := "Ada"
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	login := time.Date(2026, 12, 6, 19, 0, 0, 123456789, zone)
	full := permiso.User{
		ID: uuid.MustParse("0b1f7a2e-6a55-4c8e-9d1e-0c3b8e0f4a11"), Username: odd, Email: odd,
		FirstName: &first, LastName: &odd, DisplayName: &odd, Bio: &odd,
		IsActive: true, IsVerified: true, IsSuperuser: true, LastLogin: &login,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), UpdatedAt: login.Add(time.Hour),
		Roles: []permiso.Role{
			{ID: uuid.MustParse("ffffffff-0000-4abc-8def-0123456789ab"), Name: "admin", Description: &desc,
				Scopes: []permiso.Scope{{Name: "write:users"}, {Name: odd}, {Name: "read:profile"}}},
			{ID: uuid.New(), Name: odd, Scopes: []permiso.Scope{{Name: "read:profile"}}},
		},
	}
	display := permiso.User{ID: uuid.New(), Username: "bob", DisplayName: &desc,
		Roles: []permiso.Role{{ID: uuid.New(), Name: "empty"}}}
	for name, u := range map[string]permiso.User{"full": full, "zero": {}, "roles without scopes": display} {
		want, err := json.Marshal(userView(u))
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("prefix")
		got := (*userAnswer)(&u).AppendJSON(prefix[:len(prefix):len(prefix)])
		if !bytes.Equal(got, append(prefix, want...)) {
			t.Errorf("%s: appended\n got %s\nwant prefix%s", name, got, want)
		}
	}
}
