package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// The OpenID Connect provider's tables (migration 4, docs/oidc.md):
// authorization codes and the browser-session marks of user_sessions.

// AuthCodes describes the authorization_codes table. Only the code's hash
// is stored; scopes are one space-separated, sorted text.
var AuthCodes = NewTable("authorization_codes", "ac", append(Fields[permiso.AuthCode]([]string{"code_hash", "created_at"},
	"code_hash", "client_id", "user_id", "browser_session_id", "redirect_uri", "nonce",
	"code_challenge", "auth_time", "created_at", "expires_at", "used_at", "session_id"),
	listCol("scopes", func(c *permiso.AuthCode) *[]string { return &c.Scopes }, scopesText),
	listCol("amr", func(c *permiso.AuthCode) *[]string { return &c.AMR }, spaced),
)...)

// AuthCodeMessages are the refusals about authorization codes.
var AuthCodeMessages = Messages{NotFound: "Authorization code not found", Exists: "Authorization code already exists"}

// AuthCodeSpentMessage refuses a code that was already exchanged.
const AuthCodeSpentMessage = "Authorization code already used"

// authCodeUse is authorization_codes as a table of single-use secrets.
var authCodeUse = &singleUse[permiso.AuthCode]{t: AuthCodes, byHash: " WHERE ac.code_hash = ?",
	usedAt: func(c permiso.AuthCode) *time.Time { return c.UsedAt }, m: AuthCodeMessages,
	missing: "Client, user or session not found", spent: AuthCodeSpentMessage}

func (s *Store) authCodeErr(op string, err error) error {
	return authCodeUse.err(s, op, err)
}

// CreateAuthCode stores a new, unused authorization code (CreatedAt
// defaults to now).
func (s *Store) CreateAuthCode(ctx context.Context, c permiso.AuthCode) error {
	c.CreatedAt = orNow(c.CreatedAt)
	c.UsedAt, c.SessionID = nil, nil
	_, err := s.exec(ctx, s.c.Pool(), AuthCodes.Insert(), AuthCodes.Args(s.d, &c)...)
	return s.authCodeErr("create authorization code", err)
}

// GetAuthCode returns the code with this hash, used or not.
func (s *Store) GetAuthCode(ctx context.Context, hash string) (permiso.AuthCode, error) {
	return authCodeUse.get(ctx, s, s.c.Reader(), "get authorization code", hash)
}

// RedeemAuthCode marks the unused, unexpired code used by sessionID, with
// one conditional UPDATE (a compare-and-swap); see permiso.OIDCStore.
func (s *Store) RedeemAuthCode(ctx context.Context, hash string, sessionID uuid.UUID, now time.Time) error {
	return authCodeUse.spend(ctx, s, "redeem authorization code", hash, `UPDATE authorization_codes SET used_at = ?1, session_id = ?2
		WHERE code_hash = ?3 AND used_at IS NULL AND expires_at > ?1`, s.d.Time(now), sessionID, hash)
}

// DeleteExpiredAuthCodes removes codes that expired before before.
func (s *Store) DeleteExpiredAuthCodes(ctx context.Context, before time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), "DELETE FROM authorization_codes WHERE expires_at < ?", s.d.Time(before))
	return int(n), s.authCodeErr("delete expired authorization codes", err)
}

// BrowserSessionMessages are the refusals about browser sessions.
var BrowserSessionMessages = Messages{NotFound: "Browser session not found", Exists: "Browser session already exists"}

// CreateBrowserSession stores sess and its browser-session mark in one
// transaction.
func (s *Store) CreateBrowserSession(ctx context.Context, sess permiso.Session, b permiso.BrowserSession) (permiso.BrowserSession, error) {
	var out permiso.BrowserSession
	err := s.c.Write(ctx, func(q Querier) error {
		created, err := s.insertSession(ctx, q, sess)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, q, "INSERT INTO browser_sessions (session_id, token_hash, auth_time) VALUES (?, ?, ?)",
			created.ID, b.TokenHash, s.d.Time(b.AuthTime)); err != nil {
			return s.errOf(err, "create browser session", BrowserSessionMessages, false, "")
		}
		out, err = s.getBrowserSession(ctx, q, "bs.session_id = ?", created.ID)
		return err
	})
	return out, err
}

// GetBrowserSession returns the browser session whose cookie value has
// this hash, with its session as stored.
func (s *Store) GetBrowserSession(ctx context.Context, tokenHash string) (permiso.BrowserSession, error) {
	return s.getBrowserSession(ctx, s.c.Reader(), "bs.token_hash = ?", tokenHash)
}

// BrowserSessionIDs returns the ids of the user's browser sessions.
func (s *Store) BrowserSessionIDs(ctx context.Context, userID uuid.UUID) ([]uuid.UUID, error) {
	out, err := scanAll(ctx, s, s.c.Reader(), func(r Row) (id uuid.UUID, err error) { return id, r.Scan(&id) },
		"SELECT bs.session_id FROM browser_sessions AS bs JOIN user_sessions AS us ON us.id = bs.session_id WHERE us.user_id = ?", userID)
	return out, s.errOf(err, "list browser sessions", BrowserSessionMessages, false, "")
}

func (s *Store) getBrowserSession(ctx context.Context, q Querier, cond string, arg any) (permiso.BrowserSession, error) {
	var b permiso.BrowserSession
	dest := Sessions.Dest(s.d, &b.Session, &b.TokenHash, s.d.ScanTime(&b.AuthTime))
	err := s.queryRow(ctx, q, "SELECT "+Sessions.List()+", bs.token_hash, bs.auth_time FROM "+Sessions.From()+
		" JOIN browser_sessions AS bs ON bs.session_id = us.id WHERE "+cond, arg).Scan(dest...)
	if err != nil {
		return permiso.BrowserSession{}, s.errOf(err, "get browser session", BrowserSessionMessages, false, "")
	}
	Sessions.Normalize(&b.Session)
	b.AuthTime = b.AuthTime.UTC()
	return b, nil
}
