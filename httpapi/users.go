package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/internal/jsonappend"
	"github.com/permiso/permiso/oauth2"
	"github.com/permiso/permiso/reports"
)

// Users. Who may call each route is decided by its access rule (routes.go,
// access.go); what a caller may change, and on whom (the delegation rule),
// is decided by package identity from identity.Actor, which is built here
// from the principal and actingAsAdmin. See docs/security-model.md.

// Messages of the original service.
const (
	msgPasswordUpdated = "Password updated successfully"
	msgResetRequested  = "If the email exists, a password reset link has been sent"
	msgResetDone       = "Password reset successfully"
	msgVerifyRequested = "If the email exists and is unverified, a verification link has been sent"
	msgVerifyDone      = "Email verified successfully"
	msgUnlocked        = "Account unlocked successfully"
	maxSearchLength    = 100
	defaultPerPage     = 20
	maxPerPage         = 100
)

var errNoIdentity = permiso.Errorf(permiso.EUNAVAILABLE, "Account management is not configured")

// identityHandler serves a route of the users, roles, scopes and
// service-clients API: 503 when the server has no identity service
// (Deps.Identity nil), so the handlers can rely on s.ident.
func (s *server) identityHandler(h handlerFunc) http.Handler {
	return needs(s.ident != nil, errNoIdentity, h)
}

// roleInfo is a role inside a UserResponse.
type roleInfo struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description *string `json:"description"`
}

// userResponse is the original service's UserResponse. Every field is
// sent, null when unset; scope_names and scopes are the sorted,
// de-duplicated scopes of the user's current roles.
type userResponse struct {
	ID          string     `json:"id"`
	Username    string     `json:"username"`
	Email       string     `json:"email"`
	FirstName   *string    `json:"first_name"`
	LastName    *string    `json:"last_name"`
	DisplayName *string    `json:"display_name"`
	Bio         *string    `json:"bio"`
	IsActive    bool       `json:"is_active"`
	IsVerified  bool       `json:"is_verified"`
	IsSuperuser bool       `json:"is_superuser"`
	FullName    string     `json:"full_name"`
	LastLogin   *string    `json:"last_login"`
	CreatedAt   string     `json:"created_at"`
	UpdatedAt   string     `json:"updated_at"`
	Roles       []roleInfo `json:"roles"`
	ScopeNames  []string   `json:"scope_names"`
	Scopes      []string   `json:"scopes"`
}

func userView(u permiso.User) userResponse {
	out := userResponse{
		ID: u.ID.String(), Username: u.Username, Email: u.Email,
		FirstName: u.FirstName, LastName: u.LastName, DisplayName: u.DisplayName, Bio: u.Bio,
		IsActive: u.IsActive, IsVerified: u.IsVerified, IsSuperuser: u.IsSuperuser, FullName: u.FullName(),
		CreatedAt: timestamp(u.CreatedAt), UpdatedAt: timestamp(u.UpdatedAt),
		Roles: make([]roleInfo, 0, len(u.Roles)), ScopeNames: u.ScopeNames(),
	}
	if u.LastLogin != nil {
		t := timestamp(*u.LastLogin)
		out.LastLogin = &t
	}
	for _, r := range u.Roles {
		out.Roles = append(out.Roles, roleInfo{ID: r.ID.String(), Name: r.Name, Description: r.Description})
	}
	out.Scopes = slices.Clone(out.ScopeNames)
	return out
}

// userAnswer answers one user (GET /users/me on every bearer read, and
// the other answers of a single user) with the bytes json.Marshal writes
// for userView(u), appended straight from the user without reflection:
// its id and times are formatted into the answer rather than into strings
// first, and its scopes, sent twice (scope_names and scopes), are
// collected once (TestUserAnswerIsUserView). Lists of users are encoded
// from userView by json.Marshal.
type userAnswer permiso.User

// AppendJSON appends u as json.Marshal(userView(u)) writes it.
func (u *userAnswer) AppendJSON(b []byte) []byte {
	user := (*permiso.User)(u)
	b = appendUUID(append(b, `{"id":`...), user.ID)
	b = jsonappend.String(append(b, `,"username":`...), u.Username)
	b = jsonappend.String(append(b, `,"email":`...), u.Email)
	b = jsonappend.StringPtr(append(b, `,"first_name":`...), u.FirstName)
	b = jsonappend.StringPtr(append(b, `,"last_name":`...), u.LastName)
	b = jsonappend.StringPtr(append(b, `,"display_name":`...), u.DisplayName)
	b = jsonappend.StringPtr(append(b, `,"bio":`...), u.Bio)
	b = jsonappend.Bool(append(b, `,"is_active":`...), u.IsActive)
	b = jsonappend.Bool(append(b, `,"is_verified":`...), u.IsVerified)
	b = jsonappend.Bool(append(b, `,"is_superuser":`...), u.IsSuperuser)
	b = jsonappend.String(append(b, `,"full_name":`...), user.FullName())
	b = append(b, `,"last_login":`...)
	if u.LastLogin == nil {
		b = append(b, "null"...)
	} else {
		b = appendTimestamp(b, *u.LastLogin)
	}
	b = appendTimestamp(append(b, `,"created_at":`...), u.CreatedAt)
	b = appendTimestamp(append(b, `,"updated_at":`...), u.UpdatedAt)
	b = append(b, `,"roles":[`...)
	for i, r := range u.Roles {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUUID(append(b, `{"id":`...), r.ID)
		b = jsonappend.String(append(b, `,"name":`...), r.Name)
		b = jsonappend.StringPtr(append(b, `,"description":`...), r.Description)
		b = append(b, '}')
	}
	scopes := user.ScopeNames()
	b = jsonappend.Strings(append(b, `],"scope_names":`...), scopes)
	b = jsonappend.Strings(append(b, `,"scopes":`...), scopes)
	return append(b, '}')
}

type messageResponse struct {
	Message string `json:"message"`
}

// actor describes the caller to package identity: who it is, whether it
// was admitted as an administrator, what the delegation rule needs
// (superuser, role admin, the scopes it holds now), and the request
// behind the call, for the audit events the service writes.
func actor(r *http.Request) identity.Actor {
	p, _ := principalFrom(r.Context())
	a := principalActor(p, actingAsAdmin(r.Context()))
	a.Request = meta(r)
	return a
}

// principalActor describes the principal p to package identity; admin
// says whether it acts as an administrator.
func principalActor(p oauth2.Principal, admin bool) identity.Actor {
	a := identity.Actor{Admin: admin, Scopes: heldScopes(p)}
	switch {
	case p.User != nil:
		a.UserID, a.Superuser, a.RoleAdmin = p.User.ID, p.User.IsSuperuser, p.User.HasRole(permiso.RoleAdmin)
	case p.Client != nil:
		a.ClientID = p.Client.ClientID
	}
	return a
}

// heldScopes are the scopes p holds now: those of its token that its
// current roles, or the client's current scopes, still include
// (oauth2.Principal.HasScope).
func heldScopes(p oauth2.Principal) []string {
	var have []string
	switch {
	case p.User != nil:
		have = p.User.ScopeNames()
	case p.Client != nil:
		have = p.Client.ScopeNames()
	}
	out := make([]string, 0, len(have))
	for _, s := range have {
		if p.HasScope(s) {
			out = append(out, s)
		}
	}
	return out
}

// selfActor is the caller acting on their own record through /users/me:
// never as an administrator, so /me changes profile fields only, for
// everyone.
func selfActor(r *http.Request) (identity.Actor, permiso.User) {
	p, _ := principalFrom(r.Context())
	return identity.Actor{UserID: p.User.ID, Request: meta(r)}, *p.User
}

// decodeObject decodes a JSON object body into v and returns its keys.
func decodeObject(r *http.Request, v any) (map[string]json.RawMessage, error) {
	var raw json.RawMessage
	if err := decodeJSON(r, &raw); err != nil {
		return nil, err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
		return nil, permiso.Invalid("Request body must be a JSON object",
			permiso.FieldError{Field: "body", Message: "must be a JSON object"})
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, bodyError(err)
	}
	return keys, nil
}

type userCreateBody struct {
	Username    string    `json:"username"`
	Email       string    `json:"email"`
	Password    string    `json:"password"`
	FirstName   *string   `json:"first_name"`
	LastName    *string   `json:"last_name"`
	DisplayName *string   `json:"display_name"`
	Bio         *string   `json:"bio"`
	IsActive    *bool     `json:"is_active"`
	IsVerified  *bool     `json:"is_verified"`
	IsSuperuser *bool     `json:"is_superuser"`
	RoleIDs     *[]string `json:"role_ids"`
}

func (b userCreateBody) newUser() identity.NewUser {
	u := identity.NewUser{Username: b.Username, Email: b.Email, Password: b.Password,
		FirstName: b.FirstName, LastName: b.LastName, DisplayName: b.DisplayName, Bio: b.Bio,
		IsActive: b.IsActive, IsVerified: b.IsVerified, IsSuperuser: b.IsSuperuser}
	if b.RoleIDs != nil {
		u.RoleIDs = append([]string{}, (*b.RoleIDs)...)
	}
	return u
}

// handleRegister: POST /users/register (public, RATE_LIMIT_REGISTER).
func (s *server) handleRegister() http.Handler {
	return s.userCreate(func(r *http.Request, in identity.NewUser) (permiso.User, error) {
		return s.ident.Register(r.Context(), meta(r), in)
	})
}

// userCreate serves the creation of a user: the body (the original
// service's UserCreate), one call of create, 201 with the user.
func (s *server) userCreate(create func(r *http.Request, in identity.NewUser) (permiso.User, error)) http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		var body userCreateBody
		if _, err := decodeObject(r, &body); err != nil {
			return err
		}
		u, err := create(r, body.newUser())
		if err != nil {
			return err
		}
		return answer(w, http.StatusCreated, (*userAnswer)(&u))
	})
}

// handleMe: GET /users/me and GET /users/profile.
func (s *server) handleMe() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		p, _ := principalFrom(r.Context())
		return answer(w, http.StatusOK, (*userAnswer)(p.User))
	})
}

type userUpdateBody struct {
	Email       *string   `json:"email"`
	FirstName   *string   `json:"first_name"`
	LastName    *string   `json:"last_name"`
	DisplayName *string   `json:"display_name"`
	Bio         *string   `json:"bio"`
	IsActive    *bool     `json:"is_active"`
	IsVerified  *bool     `json:"is_verified"`
	IsSuperuser *bool     `json:"is_superuser"`
	RoleIDs     *[]string `json:"role_ids"`
}

// readUserUpdate decodes a user update. Credentials and the username are
// never changed through it (422, as the original).
func readUserUpdate(r *http.Request) (identity.UserUpdate, error) {
	var b userUpdateBody
	keys, err := decodeObject(r, &b)
	if err != nil {
		return identity.UserUpdate{}, err
	}
	// Keys are matched as encoding/json matches the fields above:
	// without regard to case, so "Password" is refused like "password".
	var bad []permiso.FieldError
	for _, k := range []string{"username", "password", "password_hash"} {
		for sent := range keys {
			if strings.EqualFold(sent, k) {
				bad = append(bad, permiso.FieldError{Field: k, Message: "Field '" + k + "' cannot be updated via this endpoint"})
				break
			}
		}
	}
	if len(bad) > 0 {
		return identity.UserUpdate{}, permiso.Invalid("Request validation failed", bad...)
	}
	return identity.UserUpdate{Email: b.Email, FirstName: b.FirstName, LastName: b.LastName, DisplayName: b.DisplayName,
		Bio: b.Bio, IsActive: b.IsActive, IsVerified: b.IsVerified, IsSuperuser: b.IsSuperuser, RoleIDs: b.RoleIDs}, nil
}

// updateUser serves PUT /users/me (profile fields only, for everyone) and
// PUT /users/{user_id} (self: profile fields only; admin:users:
// everything): the update of the user id by a.
func (s *server) updateUser(w http.ResponseWriter, r *http.Request, a identity.Actor, id uuid.UUID) error {
	in, err := readUserUpdate(r)
	if err != nil {
		return err
	}
	u, err := s.ident.UpdateUser(r.Context(), a, id, in)
	if err != nil {
		return err
	}
	return answer(w, http.StatusOK, (*userAnswer)(&u))
}

// userOp is an operation on one user by an actor, the same whether the
// route names the caller (/users/me...) or a user id.
type userOp func(w http.ResponseWriter, r *http.Request, a identity.Actor, id uuid.UUID) error

// onMe serves op on the caller, as themselves (selfActor).
func (s *server) onMe(op userOp) http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		a, me := selfActor(r)
		return op(w, r, a, me.ID)
	})
}

// onUserID serves op on the path's {user_id}, by the request's actor.
func (s *server) onUserID(op userOp) http.Handler {
	return s.identityHandler(byID("user_id", "User", func(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
		return op(w, r, actor(r), id)
	}))
}

// handleUserGet: GET /users/{user_id} (self or admin:users).
func (s *server) handleUserGet() http.Handler {
	return getByID(s, "user_id", "User", s.ident.GetUser, userView)
}

// handleUserDelete: DELETE /users/{user_id} (self, except administrators;
// admin:users for others).
func (s *server) handleUserDelete() http.Handler {
	return deleteByID(s, "user_id", "User", s.ident.DeleteUser)
}

type passwordBody struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword serves PUT /users/me/password and
// PUT /users/{user_id}/password.
func (s *server) changePassword(w http.ResponseWriter, r *http.Request, a identity.Actor, id uuid.UUID) error {
	var b passwordBody
	if _, err := decodeObject(r, &b); err != nil {
		return err
	}
	keep, _ := uuid.Parse(currentSID(r.Context()))
	if err := s.ident.ChangePassword(r.Context(), a, id, b.CurrentPassword, b.NewPassword, keep); err != nil {
		return err
	}
	return answer(w, http.StatusOK, messageResponse{msgPasswordUpdated})
}

// handleUserList: GET /users (admin:users): search, is_active,
// is_verified, role_id, page, per_page; ordered by created_at, id.
func (s *server) handleUserList() http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		var errs queryErrs
		f := permiso.UserFilter{
			Search:     readString(q, "search", maxSearchLength, &errs),
			IsActive:   readBool(q, "is_active", &errs),
			IsVerified: readBool(q, "is_verified", &errs),
			RoleID:     readUUID(q, "role_id", &errs),
		}
		return listPage(w, r, q, &errs, "users", &f.Offset, &f.Limit,
			func(ctx context.Context) ([]permiso.User, int, error) { return s.store.ListUsers(ctx, f) }, userView)
	})
}

// handleUserCreate: POST /users (admin:users).
func (s *server) handleUserCreate() http.Handler {
	return s.userCreate(func(r *http.Request, in identity.NewUser) (permiso.User, error) {
		return s.ident.CreateUser(r.Context(), actor(r), in)
	})
}

// handleUserRoles: PUT /users/{user_id}/roles (admin:users).
func (s *server) handleUserRoles() http.Handler {
	type body struct {
		RoleIDs []string `json:"role_ids"`
	}
	return s.identityHandler(putByID("user_id", "User", func(ctx context.Context, a identity.Actor, id uuid.UUID, b body) (permiso.User, error) {
		return s.ident.SetRoles(ctx, a, id, b.RoleIDs)
	}, userView))
}

// handleUserUnlock: POST /users/{user_id}/unlock (admin:users).
func (s *server) handleUserUnlock() http.Handler {
	return actByID(s, "user_id", "User", s.ident.Unlock, func(u permiso.User) any {
		return map[string]any{"message": msgUnlocked, "user": userView(u)}
	})
}

// handleUserStats: GET /users/stats/overview (admin:users;
// reports.Service.UserStats).
func (s *server) handleUserStats() http.Handler {
	return report(s, (*reports.Service).UserStats)
}

// handleResetRequest: POST /users/password-reset/request (public).
func (s *server) handleResetRequest() http.Handler {
	return s.mailRequest(msgResetRequested, s.ident.RequestPasswordReset)
}

// handleResetConfirm: POST /users/password-reset/confirm (public).
func (s *server) handleResetConfirm() http.Handler {
	type body struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
	}
	return tokenConfirm(s, msgResetDone, func(r *http.Request, b body) error {
		_, err := s.ident.ConfirmPasswordReset(r.Context(), meta(r), b.Token, b.NewPassword)
		return err
	})
}

// handleVerifyRequest: POST /users/email-verification/request (public).
func (s *server) handleVerifyRequest() http.Handler {
	return s.mailRequest(msgVerifyRequested, s.ident.RequestEmailVerification)
}

// handleVerifyConfirm: POST /users/email-verification/confirm (public).
func (s *server) handleVerifyConfirm() http.Handler {
	type body struct {
		Token string `json:"token"`
	}
	return tokenConfirm(s, msgVerifyDone, func(r *http.Request, b body) error {
		_, err := s.ident.ConfirmEmailVerification(r.Context(), meta(r), b.Token)
		return err
	})
}

// mailRequest serves a public request that mails a single-use token to an
// address (password reset, email verification): {"email"} in, the same
// answer whether or not the address belongs to an account. send mails
// the token.
func (s *server) mailRequest(done string, send func(ctx context.Context, req permiso.RequestMeta, email string) error) http.Handler {
	type body struct {
		Email string `json:"email"`
	}
	return tokenConfirm(s, done, func(r *http.Request, b body) error { return send(r.Context(), meta(r), b.Email) })
}

// tokenConfirm serves the confirmation of a mailed single-use token (and,
// through mailRequest, the request for one): the body B in, confirm, done
// out.
func tokenConfirm[B any](s *server, done string, confirm func(r *http.Request, b B) error) http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		var b B
		if _, err := decodeObject(r, &b); err != nil {
			return err
		}
		if err := confirm(r, b); err != nil {
			return err
		}
		return answer(w, http.StatusOK, messageResponse{done})
	})
}
