package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/permiso/permiso"
)

// The delegation rule (docs/security-model.md, "Delegated administrators").
//
// A caller admitted to an administrative route is either a full
// administrator (a superuser, or a user holding role admin) or a delegated
// administrator: a user or a service client admitted because it holds the
// route's admin:* scope. A delegated administrator may hand on only what it
// holds itself, and may act only on users, roles, scopes and clients that
// hold nothing it lacks. Without this rule a holder of admin:users could
// set a superuser's password, grant itself role admin or add admin:system
// to its own role, and a holder of admin:clients could create a client
// holding every admin:* scope.
//
// "Holds" means holds now: the scopes of the caller's token that its
// current roles (or the client's current scopes) still include, the
// semantics of oauth2.Principal.HasScope. The scopes of the built-in role
// user count as held by every caller: anyone gets them by registering, so
// handing them on gives nothing away (and a plain user, who holds them, is
// not "more privileged" than a holder of admin:users).
//
// Superusers and holders of role admin keep full power, except that only a
// superuser acts on a superuser or changes is_superuser.

// ErrDelegation is the cause of every refusal of the delegation rule:
// errors.Is(err, ErrDelegation) tells such a 403 from the others (the HTTP
// layer audits it with reason "delegation").
var ErrDelegation = errors.New("refused by the delegation rule")

// refuse returns a 403 forbidden refusal of the delegation rule.
func refuse(format string, args ...any) error {
	return permiso.Wrap(permiso.EFORBIDDEN, fmt.Sprintf(format, args...), ErrDelegation)
}

// Delegation is the delegation rule applied to one caller. The zero value
// holds nothing and may hand on nothing; build one with NewDelegation or
// DelegationFor. It is a value: safe to copy and to use concurrently.
type Delegation struct {
	superuser bool
	roleAdmin bool
	held      map[string]bool
}

// NewDelegation returns the rule for the caller a: its superuser status,
// role admin, and a.Scopes, the scopes it holds now. baseline are the
// scopes of the built-in role user, held by everyone.
func NewDelegation(a Actor, baseline []string) Delegation {
	d := Delegation{superuser: a.Superuser, roleAdmin: a.RoleAdmin, held: make(map[string]bool, len(a.Scopes)+len(baseline))}
	for _, s := range a.Scopes {
		d.held[s] = true
	}
	for _, s := range baseline {
		d.held[s] = true
	}
	return d
}

// DelegationFor returns the rule for the caller a, reading the scopes of
// the built-in role user (the baseline everyone holds) from roles. A full
// administrator needs no baseline and costs no read.
func DelegationFor(ctx context.Context, roles permiso.RoleStore, a Actor) (Delegation, error) {
	if a.Superuser || a.RoleAdmin || roles == nil {
		return NewDelegation(a, nil), nil
	}
	r, err := roles.GetRoleByName(ctx, permiso.RoleUser)
	switch {
	case errors.Is(err, permiso.ErrNotFound):
		return NewDelegation(a, nil), nil
	case err != nil:
		return Delegation{}, err
	}
	baseline := make([]string, 0, len(r.Scopes))
	for _, sc := range r.Scopes {
		baseline = append(baseline, sc.Name)
	}
	return NewDelegation(a, baseline), nil
}

// Delegation returns the rule for the caller a (DelegationFor on the
// service's store).
func (s *Service) Delegation(ctx context.Context, a Actor) (Delegation, error) {
	return DelegationFor(ctx, s.deps.Store, a)
}

// Full reports whether the caller is a full administrator: a superuser or
// a holder of role admin.
func (d Delegation) Full() bool { return d.superuser || d.roleAdmin }

// Holds reports whether the caller holds the scope now (or everyone does).
// A full administrator holds every scope.
func (d Delegation) Holds(scope string) bool { return d.Full() || d.held[scope] }

// lacking returns the scopes the caller does not hold, sorted.
func (d Delegation) lacking(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if !d.Holds(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func scopeNames(scopes []permiso.Scope) []string {
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		out = append(out, sc.Name)
	}
	return out
}

// MayManageUser says whether the caller may act on the user u in any way:
// change their profile, email, status or roles, set their password,
// disable, delete or unlock them, end their sessions or revoke their
// tokens. Only a superuser acts on a superuser; only a full administrator
// acts on a holder of role admin; a delegated administrator acts only on a
// user who holds no scope it lacks (an email change followed by a password
// reset would otherwise be a takeover of a more privileged account).
func (d Delegation) MayManageUser(u permiso.User) error {
	switch {
	case u.IsSuperuser && !d.superuser:
		return refuse("Only a superuser can change a superuser")
	case d.Full():
		return nil
	case u.HasRole(permiso.RoleAdmin):
		return refuse("Only an administrator can change a holder of role admin")
	case len(d.lacking(u.ScopeNames())) > 0:
		return refuse("The user holds scopes you do not hold")
	}
	return nil
}

// MayGrantRole says whether the caller may give the role r to a user or
// take it away: a delegated administrator only when it holds every scope
// of r, and never role admin.
func (d Delegation) MayGrantRole(r permiso.Role) error {
	if d.Full() {
		return nil
	}
	if r.Name == permiso.RoleAdmin {
		return refuse("Only an administrator can assign or remove role admin")
	}
	if miss := d.lacking(scopeNames(r.Scopes)); len(miss) > 0 {
		return refuse("Role %q holds scopes you do not hold: %s", r.Name, strings.Join(miss, ", "))
	}
	return nil
}

// MaySetRoles says whether the caller may change a user's roles from
// before to after: every role given or taken away passes MayGrantRole;
// roles kept are not looked at.
func (d Delegation) MaySetRoles(before, after []permiso.Role) error {
	has := func(list []permiso.Role, r permiso.Role) bool {
		return slices.ContainsFunc(list, func(x permiso.Role) bool { return x.ID == r.ID })
	}
	for _, r := range after {
		if !has(before, r) {
			if err := d.MayGrantRole(r); err != nil {
				return err
			}
		}
	}
	for _, r := range before {
		if !has(after, r) {
			if err := d.MayGrantRole(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// MayChangeRole says whether the caller may rename, describe, re-scope or
// delete the role r: a delegated administrator only when it holds every
// scope of r, and never a built-in role (user, admin, service). Role user
// in particular is given to every registration and its scopes count as
// held by every caller, so a scope added to it would reach the public and
// every other delegated administrator at once.
func (d Delegation) MayChangeRole(r permiso.Role) error {
	if d.Full() {
		return nil
	}
	if builtinRole(r.Name) {
		return refuse("Only an administrator can change the built-in role %s", r.Name)
	}
	if len(d.lacking(scopeNames(r.Scopes))) > 0 {
		return refuse("Role %q holds scopes you do not hold", r.Name)
	}
	return nil
}

// MayGrantScopes says whether the caller may give the scopes to a role or
// a service client: a delegated administrator only those it holds.
func (d Delegation) MayGrantScopes(scopes []permiso.Scope) error {
	if miss := d.lacking(scopeNames(scopes)); len(miss) > 0 {
		return refuse("You cannot grant scopes you do not hold: %s", strings.Join(miss, ", "))
	}
	return nil
}

// MayManageScope says whether the caller may rename, describe or delete
// the scope sc: a delegated administrator only one it holds.
func (d Delegation) MayManageScope(sc permiso.Scope) error {
	if !d.Holds(sc.Name) {
		return refuse("You cannot change a scope you do not hold")
	}
	return nil
}

// MayManageClient says whether the caller may change the service client
// c in any way: update, re-scope, disable, delete, or rotate its secret
// (which hands over the client's scopes, since the new secret is
// returned), or revoke its tokens. A delegated administrator acts only on
// a client that holds no scope it lacks.
func (d Delegation) MayManageClient(c permiso.ServiceClient) error {
	if len(d.lacking(c.ScopeNames())) > 0 {
		return refuse("The service client holds scopes you do not hold")
	}
	return nil
}

// MayConfigureBrowserClient says whether the caller may decide where a
// client's browser flow sends the user and what it asks of them: set or
// clear is_trusted (consent is skipped), set its redirect_uris or
// post_logout_redirect_uris, or give it the authorization_code grant
// (creating such a client too). Only a full administrator (superuser or
// role admin): whoever chooses where codes go collects the scopes of any
// user who signs in through the client (docs/security-model.md,
// "Delegated administrators").
func (d Delegation) MayConfigureBrowserClient() error {
	if !d.Full() {
		return refuse("Only an administrator can set is_trusted, redirect URIs or the authorization_code grant of a client")
	}
	return nil
}

// MayRotateBrowserClientSecret says whether the caller may rotate the
// secret of the client c: a client of the browser flow (trusted, with
// redirect URIs, or with the authorization_code grant) only when it could
// configure it (MayConfigureBrowserClient), since the new secret lets it
// exchange the codes the client's redirect URIs receive.
func (d Delegation) MayRotateBrowserClientSecret(c permiso.ServiceClient) error {
	if c.IsTrusted || len(c.RedirectURIs) > 0 || len(c.PostLogoutRedirectURIs) > 0 || c.AllowsGrant(permiso.GrantTypeAuthorizationCode) {
		return d.MayConfigureBrowserClient()
	}
	return nil
}

// MaySetSuperuser says whether the caller may grant or revoke superuser
// status (also by creating a superuser): only a superuser.
func (d Delegation) MaySetSuperuser() error {
	if !d.superuser {
		return refuse("Only a superuser can grant or revoke is_superuser")
	}
	return nil
}
