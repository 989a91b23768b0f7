package cache_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/permiso/permiso"
)

// passThrough lists the permiso.Store methods that Store does not
// override, because they neither read what it caches nor write anything it
// caches. A method added to permiso.Store must be added here or overridden
// (with its invalidation) in writes.go; TestEveryStoreMethodIsClassified
// fails until it is.
var passThrough = []string{
	// Reads that are not cached.
	"Backend", "Ping", "GetUserByEmail", "GetUserByLogin", "GetUserByUsername", "ListUsers", "UserStats",
	"PasswordHistory", "GetRole", "GetRoleByName", "ListRoles", "GetScope", "GetScopeByName", "ListScopes",
	"GetServiceClient", "ListServiceClients", "GetRefreshTokenByHash", "GetRefreshTokenSession", "GetSession", "ListSessions", "ListSessionsRevokedSince",
	"SessionStats", "ListAuditEvents", "CountAuditActors", "CountAuditEvents", "ListSigningKeys",
	"GetActionToken", "MigrationStatus",
	// Writes of tables nothing cached is built from.
	"AppendAuditEvents", "DeleteAuditEventsBefore", "CreateRefreshToken", "UseRefreshToken",
	"UseRefreshTokenGrace", "RevokeRefreshFamily", "DeleteExpiredRefreshTokens", "CreateSession", "CreateSessionWithToken",
	"UpdateSession", "RevokeSession", "RevokeUserSessions", "RevokeClientSessions", "DeleteExpiredSessions", "CreateSigningKey",
	"RetireSigningKeys", "CreateActionToken", "ConsumeActionToken", "DeleteExpiredActionTokens",
	// The browser flow's codes and browser sessions (nothing cached is
	// built from them; the sessions' revocation goes through the session
	// methods above).
	"CreateAuthCode", "GetAuthCode", "RedeemAuthCode", "DeleteExpiredAuthCodes", "CreateBrowserSession",
	"GetBrowserSession", "BrowserSessionIDs",
	// Second factors and recovery codes (docs/mfa.md): nothing cached is
	// built from them.
	"PutPendingMFAFactor", "GetMFAFactor", "ListMFAFactors", "ConfirmMFAFactor", "DeleteMFAFactor", "DeleteUserMFA",
	"ReplaceRecoveryCodes", "UseRecoveryCode", "RecoveryCodeUsable", "CountRecoveryCodes", "CountConfirmedMFAFactors", "ListMFAFactorsAfter",
	"ReplaceMFASecret",
	// Pending second steps of the password grant (docs/mfa.md, "Sign-in"):
	// not cached either.
	"CreateMFAToken", "GetMFAToken", "UseMFAToken", "DeleteUserMFATokens", "DeleteExpiredMFATokens",
	// Only LastUsed and TotalRequests, which cached clients may show late.
	"AddClientUsage",
}

func TestEveryStoreMethodIsClassified(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var overridden []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 {
				continue
			}
			if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok && id.Name == "Store" {
					overridden = append(overridden, fn.Name.Name)
				}
			}
		}
	}
	st := reflect.TypeFor[permiso.Store]()
	for i := range st.NumMethod() {
		name := st.Method(i).Name
		o, p := slices.Contains(overridden, name), slices.Contains(passThrough, name)
		switch {
		case o && p:
			t.Errorf("%s is both overridden and listed as pass-through", name)
		case !o && !p:
			t.Errorf("permiso.Store.%s is neither overridden by cache.Store nor listed in passThrough: decide whether it changes a cached user or client", name)
		}
	}
}
