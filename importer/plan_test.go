package importer_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/importer"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwire"
)

// TestPlanRefusesUnstorableText: PostgreSQL text cannot hold NUL, but an
// original database with SQL_ASCII encoding can hand over bytes that are
// not UTF-8; neither is stored the same way by both backends, so either
// is reported by table, id and column (no value is silently altered).
func TestPlanRefusesUnstorableText(t *testing.T) {
	hasher := testwire.Hasher()
	hash, err := hasher.Hash(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	u, sc, c := uuid.New(), uuid.New(), uuid.New()
	o := &importer.Original{
		Scopes: []importer.Scope{{ID: sc, Name: "read:things", Description: ptr("bad\x00"), CreatedAt: now, UpdatedAt: now}},
		Users: []importer.User{{ID: u, Username: "ann", Email: "ann@example.com", PasswordHash: hash,
			DisplayName: ptr("Ann\x00"), Bio: ptr("caf\xe9"), IsActive: true, PasswordChangedAt: now, CreatedAt: now, UpdatedAt: now}},
		Clients: []importer.Client{{ID: c, ClientID: "svc", SecretHash: hash, Name: "S\xffvc", ClientType: "confidential",
			IsActive: true, AccessTokenLifetime: 3600, CreatedAt: now, UpdatedAt: now}},
	}
	_, err = importer.NewPlan(t.Context(), o, testdb.SQLite(t), options(hasher))
	var probs importer.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("NewPlan = %v, want Problems", err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.Table+"/"+p.ID+"/"+p.Column+"/"+p.Reason)
	}
	want := []string{
		"scopes/" + sc.String() + "/description/contains a NUL byte",
		"users/" + u.String() + "/display_name/contains a NUL byte",
		"users/" + u.String() + "/bio/is not valid UTF-8",
		"service_clients/" + c.String() + "/name/is not valid UTF-8",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPlanBatches: rows go in batches of BatchSize, each row with its own
// links, and Apply reports progress per batch.
func TestPlanBatches(t *testing.T) {
	hasher := testwire.Hasher()
	hash, err := hasher.Hash(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	role := uuid.New()
	o := &importer.Original{Roles: []importer.Role{{ID: role, Name: "user", CreatedAt: now, UpdatedAt: now}}}
	for i := range 5 {
		id := uuid.New()
		name := "user" + string(rune('a'+i))
		o.Users = append(o.Users, importer.User{ID: id, Username: name, Email: name + "@example.com", PasswordHash: hash,
			IsActive: true, PasswordChangedAt: now, CreatedAt: now.Add(time.Duration(i) * time.Second), UpdatedAt: now})
		o.UserRoles = append(o.UserRoles, importer.Link{From: id, To: role})
	}
	store := testdb.SQLite(t)
	opts := options(hasher)
	plan, err := importer.NewPlan(t.Context(), o, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	n, err := plan.Apply(t.Context(), store, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if n.Users != 5 || n.UserRoles != 5 || n.Roles != 0 {
		t.Errorf("wrote %+v", n)
	}
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if !slices.Equal(lines, []string{"permiso import: users 2/5 written", "permiso import: users 4/5 written", "permiso import: users 5/5 written"}) {
		t.Errorf("progress:\n%s", progress.String())
	}
	for _, u := range o.Users {
		got, err := store.GetUser(t.Context(), u.ID)
		if err != nil || !got.HasRole(permiso.RoleUser) {
			t.Errorf("user %s: %v, roles %v", u.Username, err, got.RoleNames())
		}
	}
}

func ptr[T any](v T) *T { return &v }
