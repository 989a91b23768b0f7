package identity_test

import (
	"strings"
	"testing"

	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/oauth2"
)

// FuzzSplitScopeName: a name accepted as action:resource is an RFC 6749
// scope-token (it can go into the space-separated scope claim), splits
// back into its parts, and is at most 100 bytes.
func FuzzSplitScopeName(f *testing.F) {
	for _, s := range []string{"read:profile", "admin:users", "a:b", "read:", ":x", "Read:X", "read:a b", "read:a:b", "x", "write:trades.v2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		action, resource, ok := identity.SplitScopeName(name)
		if !ok {
			return
		}
		if !oauth2.ValidScopeToken(name) || action+":"+resource != name || len(name) > identity.MaxScopeName ||
			action == "" || resource == "" || strings.ToLower(name) != name {
			t.Fatalf("SplitScopeName(%q) = %q, %q, true", name, action, resource)
		}
	})
}

// FuzzDecide: any resource and action give a decision whose reason matches
// it, and no panic.
func FuzzDecide(f *testing.F) {
	f.Add("roles", "write")
	f.Add("profile", "read")
	f.Fuzz(func(t *testing.T, resource, action string) {
		d := identity.Decide(userWith("read:profile", "admin:users", "write:"+resource), resource, action)
		if d.Allowed != strings.HasPrefix(d.Reason, "Granted by scopes: ") || d.Allowed != (len(d.MatchingScopes) > 0) {
			t.Fatalf("Decide(%q, %q) = %+v: reason does not match the decision", resource, action, d)
		}
	})
}
