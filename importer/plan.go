package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/mapslice"
)

// Target is the permiso store an import writes to (any backend): what it
// already holds is read with the List methods, the import is written
// with Import.
type Target interface {
	ListScopes(ctx context.Context, f permiso.ScopeFilter) ([]permiso.Scope, int, error)
	ListRoles(ctx context.Context, f permiso.RoleFilter) ([]permiso.Role, int, error)
	ListUsers(ctx context.Context, f permiso.UserFilter) ([]permiso.User, int, error)
	ListServiceClients(ctx context.Context, f permiso.ClientFilter) ([]permiso.ServiceClient, int, error)
	permiso.ImportStore
}

// Options configure NewPlan and Apply.
type Options struct {
	// CheckHash reports whether permiso can verify a password or client
	// secret hash (argon2id.Hasher.Check). Required.
	CheckHash func(hash string) error
	// CheckAllowedIPs reports whether permiso can enforce an allowed_ips
	// list (permiso.ParseAllowedIPs). Required.
	CheckAllowedIPs func(list string) error
	// MaxAccessTokenLifetime bounds a client's access_token_lifetime:
	// permiso signs no longer-lived token. Zero means 24 hours.
	MaxAccessTokenLifetime time.Duration
	// BatchSize is how many rows (with their links) one transaction
	// writes. Zero means DefaultBatchSize.
	BatchSize int
}

// DefaultBatchSize is Options.BatchSize when it is zero.
const DefaultBatchSize = 500

// NotCarried counts what the import leaves behind on purpose.
type NotCarried struct {
	// RefreshTokens and Sessions: users log in again.
	RefreshTokens, Sessions int
	// PendingResets and PendingVerifications: users whose mailed
	// password-reset or verification token was outstanding ask again.
	PendingResets, PendingVerifications int
}

// Plan is what an import of one original database into one permiso store
// writes. It only adds: rows are matched by id (and roles and scopes also
// by name, so the original's "admin" is permiso's "admin", never a second
// one), and whatever permiso already holds is left as it is.
type Plan struct {
	// Original counts the rows and links read from the original.
	Original permiso.ImportCounts
	// Add counts the rows and links the import writes; the rest of
	// Original is already in permiso.
	Add permiso.ImportCounts
	// MatchedRoles and MatchedScopes name the original's roles and
	// scopes that permiso already holds under the same name (its seeded
	// ones, or an earlier import's), whose links are merged into them.
	MatchedRoles, MatchedScopes []string
	// NotCarried counts what is deliberately not imported.
	NotCarried NotCarried

	batches []batch
}

// batch is one transaction of Apply.
type batch struct {
	table string // what the progress line calls it
	rows  int    // rows of the table in this batch
	b     permiso.ImportBatch
}

// NewPlan maps the original's rows onto permiso's and compares them with
// what target holds. When any value cannot be carried over it returns
// Problems, naming every such row, and no plan: nothing may be written
// until the original is fixed.
func NewPlan(ctx context.Context, o *Original, target Target, opts Options) (*Plan, error) {
	if opts.CheckHash == nil || opts.CheckAllowedIPs == nil {
		return nil, errors.New("importer: Options.CheckHash and Options.CheckAllowedIPs are required")
	}
	permiso.SetDefault(&opts.MaxAccessTokenLifetime, 24*time.Hour)
	permiso.SetDefault(&opts.BatchSize, DefaultBatchSize)
	t, err := readTarget(ctx, target)
	if err != nil {
		return nil, err
	}
	m := &mapper{o: o, t: t, opts: opts, p: &Plan{}, scopeMap: map[uuid.UUID]uuid.UUID{}, roleMap: map[uuid.UUID]uuid.UUID{}}
	m.p.Original = permiso.ImportCounts{
		Scopes: len(o.Scopes), Roles: len(o.Roles), Users: len(o.Users), Clients: len(o.Clients),
		RoleScopes: len(o.RoleScopes), UserRoles: len(o.UserRoles), ClientScopes: len(o.ClientScopes),
	}
	m.p.NotCarried = NotCarried{RefreshTokens: o.RefreshTokens, Sessions: o.Sessions}
	for _, u := range o.Users {
		if u.PendingReset {
			m.p.NotCarried.PendingResets++
		}
		if u.PendingVerification {
			m.p.NotCarried.PendingVerifications++
		}
	}
	m.scopes()
	m.roles()
	m.users()
	m.clients()
	roleScopes := newLinks(o.RoleScopes, m.roleMap, m.scopeMap, t.roleScopes)
	userRoles := newLinks(o.UserRoles, identityMap(m.userIDs), m.roleMap, t.userRoles)
	clientScopes := newLinks(o.ClientScopes, identityMap(m.clientIDs), m.scopeMap, t.clientScopes)
	if len(m.problems) > 0 {
		return nil, m.problems
	}
	p := m.p
	p.Add.RoleScopes, p.Add.UserRoles, p.Add.ClientScopes = len(roleScopes), len(userRoles), len(clientScopes)
	p.batches = m.batches(roleScopes, userRoles, clientScopes)
	return p, nil
}

// targetState is what the permiso store already holds.
type targetState struct {
	scopeByName, roleByName map[string]uuid.UUID
	scopeIDs, roleIDs       map[uuid.UUID]bool
	users                   map[uuid.UUID]bool
	userByName, userByEmail map[string]uuid.UUID
	clients                 map[uuid.UUID]bool
	clientByID              map[string]uuid.UUID
	roleScopes, userRoles   map[permiso.ImportLink]bool
	clientScopes            map[permiso.ImportLink]bool
}

func readTarget(ctx context.Context, target Target) (*targetState, error) {
	t := &targetState{
		scopeByName: map[string]uuid.UUID{}, roleByName: map[string]uuid.UUID{},
		scopeIDs: map[uuid.UUID]bool{}, roleIDs: map[uuid.UUID]bool{}, users: map[uuid.UUID]bool{},
		userByName: map[string]uuid.UUID{}, userByEmail: map[string]uuid.UUID{},
		clients: map[uuid.UUID]bool{}, clientByID: map[string]uuid.UUID{},
		roleScopes: map[permiso.ImportLink]bool{}, userRoles: map[permiso.ImportLink]bool{},
		clientScopes: map[permiso.ImportLink]bool{},
	}
	scopes, _, err := target.ListScopes(ctx, permiso.ScopeFilter{})
	if err != nil {
		return nil, fmt.Errorf("read permiso's scopes: %w", err)
	}
	for _, s := range scopes {
		t.scopeByName[s.Name], t.scopeIDs[s.ID] = s.ID, true
	}
	roles, _, err := target.ListRoles(ctx, permiso.RoleFilter{})
	if err != nil {
		return nil, fmt.Errorf("read permiso's roles: %w", err)
	}
	for _, r := range roles {
		t.roleByName[r.Name], t.roleIDs[r.ID] = r.ID, true
		for _, s := range r.Scopes {
			t.roleScopes[permiso.ImportLink{From: r.ID, To: s.ID}] = true
		}
	}
	users, _, err := target.ListUsers(ctx, permiso.UserFilter{})
	if err != nil {
		return nil, fmt.Errorf("read permiso's users: %w", err)
	}
	for _, u := range users {
		t.users[u.ID] = true
		t.userByName[permiso.NormalizeUsername(u.Username)] = u.ID
		t.userByEmail[permiso.NormalizeEmail(u.Email)] = u.ID
		for _, r := range u.Roles {
			t.userRoles[permiso.ImportLink{From: u.ID, To: r.ID}] = true
		}
	}
	clients, _, err := target.ListServiceClients(ctx, permiso.ClientFilter{})
	if err != nil {
		return nil, fmt.Errorf("read permiso's service clients: %w", err)
	}
	for _, c := range clients {
		t.clients[c.ID], t.clientByID[c.ClientID] = true, c.ID
		for _, s := range c.Scopes {
			t.clientScopes[permiso.ImportLink{From: c.ID, To: s.ID}] = true
		}
	}
	return t, nil
}

// mapper builds a Plan, collecting every problem.
type mapper struct {
	o        *Original
	t        *targetState
	opts     Options
	p        *Plan
	problems Problems

	scopeMap, roleMap  map[uuid.UUID]uuid.UUID // original id -> permiso id
	userIDs, clientIDs map[uuid.UUID]bool      // original ids that map (to themselves)
	newScopes          []permiso.Scope
	newRoles           []permiso.Role
	newUsers           []permiso.User
	newClients         []permiso.ServiceClient
}

// userValue records the problem of the user id's column, normalized to
// value: its own (p, from usernameProblem or emailProblem), or else a
// value another permiso user holds (held). It reports whether there is
// none.
func (m *mapper) userValue(id uuid.UUID, column, value, p string, held map[string]uuid.UUID) bool {
	if p != "" {
		m.problem("users", id, column, "%s", p)
		return false
	}
	if other, taken := held[value]; taken {
		m.problem("users", id, column, "%q already belongs to permiso user id=%s, which is not this user", value, other)
		return false
	}
	return true
}

func (m *mapper) problem(table string, id uuid.UUID, column, format string, args ...any) {
	m.problems = append(m.problems, RowError{Table: table, ID: id.String(), Column: column, Reason: fmt.Sprintf(format, args...)})
}

// text reports a problem for each value that no backend can store; it
// returns false when there was one.
func (m *mapper) text(table string, id uuid.UUID, cols ...any) bool {
	ok := true
	for i := 0; i+1 < len(cols); i += 2 {
		name := cols[i].(string)
		var v string
		switch x := cols[i+1].(type) {
		case string:
			v = x
		case *string:
			if x == nil {
				continue
			}
			v = *x
		}
		if p := textProblem(v); p != "" {
			m.problem(table, id, name, "%s", p)
			ok = false
		}
	}
	return ok
}

func (m *mapper) scopes() {
	for _, s := range m.o.Scopes {
		if !m.text("scopes", s.ID, "name", s.Name, "description", s.Description, "resource", s.Resource) {
			continue
		}
		if id, ok := m.t.scopeByName[s.Name]; ok {
			m.scopeMap[s.ID] = id
			m.p.MatchedScopes = append(m.p.MatchedScopes, s.Name)
			continue
		}
		if m.t.scopeIDs[s.ID] { // imported before, renamed in permiso since
			m.scopeMap[s.ID] = s.ID
			continue
		}
		if p := scopeNameProblem(s.Name); p != "" {
			m.problem("scopes", s.ID, "name", "%s", p)
			continue
		}
		_, resource, _ := strings.Cut(s.Name, ":")
		m.scopeMap[s.ID] = s.ID
		m.newScopes = append(m.newScopes, permiso.Scope{ID: s.ID, Name: s.Name, Description: s.Description,
			Resource: &resource, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt})
	}
	m.p.Add.Scopes = len(m.newScopes)
}

func (m *mapper) roles() {
	for _, r := range m.o.Roles {
		if !m.text("roles", r.ID, "name", r.Name, "description", r.Description) {
			continue
		}
		if id, ok := m.t.roleByName[r.Name]; ok {
			m.roleMap[r.ID] = id
			m.p.MatchedRoles = append(m.p.MatchedRoles, r.Name)
			continue
		}
		if m.t.roleIDs[r.ID] {
			m.roleMap[r.ID] = r.ID
			continue
		}
		if p := roleNameProblem(r.Name); p != "" {
			m.problem("roles", r.ID, "name", "%s", p)
			continue
		}
		m.roleMap[r.ID] = r.ID
		m.newRoles = append(m.newRoles, permiso.Role{ID: r.ID, Name: r.Name, Description: r.Description,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt})
	}
	m.p.Add.Roles = len(m.newRoles)
}

func (m *mapper) users() {
	m.userIDs = map[uuid.UUID]bool{}
	// The first user (oldest) of a name or address keeps it; a later one
	// that differs only in case cannot be imported.
	seenName, seenEmail := map[string]uuid.UUID{}, map[string]uuid.UUID{}
	for _, u := range m.o.Users {
		if !m.text("users", u.ID, "username", u.Username, "email", u.Email, "password_hash", u.PasswordHash,
			"first_name", u.FirstName, "last_name", u.LastName, "display_name", u.DisplayName, "bio", u.Bio) {
			continue
		}
		name, email := permiso.NormalizeUsername(u.Username), permiso.NormalizeEmail(u.Email)
		ok := true
		if first, dup := seenName[name]; dup {
			m.problem("users", u.ID, "username", "%q is the username of user id=%s too, ignoring case; permiso keeps usernames unique case-insensitively", u.Username, first)
			ok = false
		} else {
			seenName[name] = u.ID
		}
		if first, dup := seenEmail[email]; dup {
			m.problem("users", u.ID, "email", "%q is the address of user id=%s too, ignoring case; permiso keeps emails unique case-insensitively", u.Email, first)
			ok = false
		} else {
			seenEmail[email] = u.ID
		}
		if m.t.users[u.ID] { // imported before: left as it is
			m.userIDs[u.ID] = true
			continue
		}
		ok = m.userValue(u.ID, "username", name, usernameProblem(u.Username), m.t.userByName) && ok
		ok = m.userValue(u.ID, "email", email, emailProblem(u.Email), m.t.userByEmail) && ok
		if err := m.opts.CheckHash(u.PasswordHash); err != nil {
			m.problem("users", u.ID, "password_hash", "permiso cannot verify this hash (%v)", err)
			ok = false
		}
		if !ok {
			continue
		}
		m.userIDs[u.ID] = true
		m.newUsers = append(m.newUsers, permiso.User{
			ID: u.ID, Username: name, Email: email, PasswordHash: u.PasswordHash,
			FirstName: u.FirstName, LastName: u.LastName, DisplayName: u.DisplayName, Bio: u.Bio,
			IsActive: u.IsActive, IsVerified: u.IsVerified, IsSuperuser: u.IsSuperuser,
			LastLogin: u.LastLogin, PasswordChangedAt: u.PasswordChangedAt,
			CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
		})
	}
	m.p.Add.Users = len(m.newUsers)
}

func (m *mapper) clients() {
	m.clientIDs = map[uuid.UUID]bool{}
	maxLife := int(m.opts.MaxAccessTokenLifetime / time.Second)
	for _, c := range m.o.Clients {
		if !m.text("service_clients", c.ID, "client_id", c.ClientID, "client_secret_hash", c.SecretHash,
			"name", c.Name, "description", c.Description, "client_type", c.ClientType,
			"contact_email", c.ContactEmail, "website_url", c.WebsiteURL, "allowed_ips", c.AllowedIPs,
			"webhook_url", c.WebhookURL) {
			continue
		}
		if m.t.clients[c.ID] {
			m.clientIDs[c.ID] = true
			continue
		}
		bad := func(column, format string, args ...any) { m.problem("service_clients", c.ID, column, format, args...) }
		n := len(m.problems)
		if p := clientIDProblem(c.ClientID); p != "" {
			bad("client_id", "%s", p)
		} else if other, taken := m.t.clientByID[c.ClientID]; taken {
			bad("client_id", "%q already belongs to permiso service client id=%s, which is not this client", c.ClientID, other)
		}
		if err := m.opts.CheckHash(c.SecretHash); err != nil {
			bad("client_secret_hash", "permiso cannot verify this hash (%v)", err)
		}
		name := strings.TrimSpace(c.Name)
		if name == "" || len([]rune(name)) > maxClientName {
			bad("name", "must be 1 to %d characters", maxClientName)
		}
		if c.ClientType != "confidential" && c.ClientType != "public" {
			bad("client_type", "%q is neither confidential nor public", c.ClientType)
		}
		if c.AccessTokenLifetime < 1 || c.AccessTokenLifetime > maxLife {
			bad("access_token_lifetime", "%d seconds is outside 1 to %d, the longest lifetime permiso signs", c.AccessTokenLifetime, maxLife)
		}
		if c.RefreshTokenLifetime != nil && *c.RefreshTokenLifetime < 1 {
			bad("refresh_token_lifetime", "%d seconds is not a lifetime", *c.RefreshTokenLifetime)
		}
		if c.RateLimitPerMinute < 0 {
			bad("rate_limit_per_minute", "%d is negative", c.RateLimitPerMinute)
		}
		if c.RateLimitPerHour < 0 {
			bad("rate_limit_per_hour", "%d is negative", c.RateLimitPerHour)
		}
		if c.TotalRequests < 0 {
			bad("total_requests", "%d is negative", c.TotalRequests)
		}
		ips, why := allowedIPs(c.AllowedIPs)
		if why == "" && ips != nil {
			if err := m.opts.CheckAllowedIPs(*ips); err != nil {
				why = err.Error()
			}
		}
		if why != "" {
			bad("allowed_ips", "%s (permiso enforces allowed_ips, which the original never did)", why)
		}
		if len(m.problems) > n {
			continue
		}
		m.clientIDs[c.ID] = true
		m.newClients = append(m.newClients, permiso.ServiceClient{
			ID: c.ID, ClientID: c.ClientID, SecretHash: c.SecretHash, Name: name,
			Description: c.Description, ClientType: c.ClientType, IsActive: c.IsActive,
			IsTrusted: c.IsTrusted, AccessTokenLifetime: c.AccessTokenLifetime,
			RefreshTokenLifetime: c.RefreshTokenLifetime, RateLimitPerMinute: c.RateLimitPerMinute,
			RateLimitPerHour: c.RateLimitPerHour, LastUsed: c.LastUsed, TotalRequests: c.TotalRequests,
			ContactEmail: c.ContactEmail, WebsiteURL: c.WebsiteURL, AllowedIPs: ips,
			WebhookURL: c.WebhookURL, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		})
	}
	m.p.Add.Clients = len(m.newClients)
}

// identityMap maps each id of set to itself (users and clients keep their
// ids).
func identityMap(set map[uuid.UUID]bool) map[uuid.UUID]uuid.UUID {
	out := make(map[uuid.UUID]uuid.UUID, len(set))
	for id := range set {
		out[id] = id
	}
	return out
}

// newLinks maps the original's links onto permiso ids and returns those
// permiso does not hold yet. A link whose row could not be mapped was
// already reported with that row.
func newLinks(in []Link, from, to map[uuid.UUID]uuid.UUID, have map[permiso.ImportLink]bool) []permiso.ImportLink {
	var out []permiso.ImportLink
	seen := map[permiso.ImportLink]bool{}
	for _, l := range in {
		f, ok1 := from[l.From]
		t, ok2 := to[l.To]
		if !ok1 || !ok2 {
			continue
		}
		k := permiso.ImportLink{From: f, To: t}
		if have[k] || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	return out
}

// batches cuts the plan into transactions: scopes; roles with their scope
// links; scope links of roles permiso already had; users with their role
// links; role links of users permiso already had; clients with their
// scope links; scope links of clients permiso already had.
func (m *mapper) batches(roleScopes, userRoles, clientScopes []permiso.ImportLink) []batch {
	size := m.opts.BatchSize
	var out []batch
	byFrom := func(links []permiso.ImportLink) map[uuid.UUID][]permiso.ImportLink {
		g := map[uuid.UUID][]permiso.ImportLink{}
		for _, l := range links {
			g[l.From] = append(g[l.From], l)
		}
		return g
	}
	for i := 0; i < len(m.newScopes); i += size {
		chunk := m.newScopes[i:min(i+size, len(m.newScopes))]
		out = append(out, batch{table: "scopes", rows: len(chunk), b: permiso.ImportBatch{Scopes: chunk}})
	}
	// rows + own links, then the links of rows permiso already had.
	withLinks := func(table, linkTable string, ids []uuid.UUID, links []permiso.ImportLink, fill func(b *permiso.ImportBatch, lo, hi int, own []permiso.ImportLink), setLinks func(b *permiso.ImportBatch, l []permiso.ImportLink)) {
		g := byFrom(links)
		owned := map[uuid.UUID]bool{}
		for i := 0; i < len(ids); i += size {
			hi := min(i+size, len(ids))
			var own []permiso.ImportLink
			for _, id := range ids[i:hi] {
				own = append(own, g[id]...)
				owned[id] = true
			}
			var b permiso.ImportBatch
			fill(&b, i, hi, own)
			out = append(out, batch{table: table, rows: hi - i, b: b})
		}
		var rest []permiso.ImportLink
		for _, l := range links {
			if !owned[l.From] {
				rest = append(rest, l)
			}
		}
		for i := 0; i < len(rest); i += size {
			chunk := rest[i:min(i+size, len(rest))]
			var b permiso.ImportBatch
			setLinks(&b, chunk)
			out = append(out, batch{table: linkTable, rows: len(chunk), b: b})
		}
	}
	withLinks("roles", "role_scopes", mapslice.Map(m.newRoles, func(r permiso.Role) uuid.UUID { return r.ID }), roleScopes,
		func(b *permiso.ImportBatch, lo, hi int, own []permiso.ImportLink) {
			b.Roles, b.RoleScopes = m.newRoles[lo:hi], own
		},
		func(b *permiso.ImportBatch, l []permiso.ImportLink) { b.RoleScopes = l })
	withLinks("users", "user_roles", mapslice.Map(m.newUsers, func(u permiso.User) uuid.UUID { return u.ID }), userRoles,
		func(b *permiso.ImportBatch, lo, hi int, own []permiso.ImportLink) {
			b.Users, b.UserRoles = m.newUsers[lo:hi], own
		},
		func(b *permiso.ImportBatch, l []permiso.ImportLink) { b.UserRoles = l })
	withLinks("service_clients", "service_client_scopes", mapslice.Map(m.newClients, func(c permiso.ServiceClient) uuid.UUID { return c.ID }), clientScopes,
		func(b *permiso.ImportBatch, lo, hi int, own []permiso.ImportLink) {
			b.Clients, b.ClientScopes = m.newClients[lo:hi], own
		},
		func(b *permiso.ImportBatch, l []permiso.ImportLink) { b.ClientScopes = l })
	return out
}

// Apply writes the plan, one transaction per batch, and returns what was
// written. On an error, the batches before it stay written: running the
// import again (after fixing the cause) writes the rest, since an import
// only adds what is missing.
func (p *Plan) Apply(ctx context.Context, w permiso.ImportStore, progress io.Writer) (permiso.ImportCounts, error) {
	var total permiso.ImportCounts
	done := map[string]int{}
	all := map[string]int{}
	for _, b := range p.batches {
		all[b.table] += b.rows
	}
	for _, b := range p.batches {
		n, err := w.Import(ctx, b.b)
		if err != nil {
			return total, fmt.Errorf("write %s (%d to %d of %d): %w", b.table, done[b.table]+1, done[b.table]+b.rows, all[b.table], err)
		}
		total = total.Add(n)
		done[b.table] += b.rows
		if progress != nil {
			fmt.Fprintf(progress, "permiso import: %s %d/%d written\n", b.table, done[b.table], all[b.table])
		}
	}
	return total, nil
}
