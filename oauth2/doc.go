// Package oauth2 is the protocol core of permiso's token endpoint and of its
// bearer-token checks, independent of any transport: the HTTP layer parses
// bodies and headers, calls this package, and writes what it returns.
//
//   - [ParseTokenRequest] turns a token request (form values and the
//     Authorization header) into a typed [TokenRequest].
//   - [Service.Token] runs it through one fixed pipeline (client
//     authentication -> grant -> scope policy -> issuance -> response), so no
//     grant can skip a shared step (RFC 6749 §3.2, §4.3, §4.4, §6).
//   - [Service.Authenticate] is the one bearer check (RFC 6750,
//     docs/security-model.md).
//   - [Service.Introspect] (RFC 7662), [Service.Revoke] (RFC 7009),
//     [Service.Logout], [Service.RevokeAllForUser] and
//     [Service.ChangeExpiredPassword] complete the /auth endpoints.
//
// Token endpoint errors are immutable [Error] values in the style of
// fosite's RFC6749Error: ErrInvalidGrant.WithDescription(...) returns a copy.
// [AsError] maps anything else: permiso EUNAVAILABLE to 503
// temporarily_unavailable with Retry-After, every unknown error to a generic
// 500 server_error whose text never reaches the caller. The other methods
// return permiso errors (EINVALIDTOKEN, EUNAVAILABLE, EFORBIDDEN, ...) for the
// management envelope.
//
// # Decisions
//
// Request parsing (RFC 6749 §2.3, §3.1, §3.2, §3.3):
//   - Every parameter, known or not, may appear at most once; a repeat is
//     invalid_request naming the parameter when its name is safe to echo.
//     Empty parameters count as absent (§3.1), so "scope=" requests nothing
//     and "grant_type=" means the default, password (as the original
//     service).
//   - Client credentials come from HTTP Basic (each part form-urlencoded
//     inside the base64, §2.3.1) or from client_id/client_secret in the body,
//     never both (invalid_request, §2.3). A client_id without its secret, or
//     the reverse, is invalid_client: there is no secret-less public-client
//     identification, because no flow here needs it. An Authorization header
//     with another scheme (a Bearer token sent along) is ignored rather than
//     refused.
//   - Scope tokens follow the §3.3 grammar; runs of spaces are tolerated,
//     any other separator is not. At most 2 KiB and 64 scopes. Scopes are
//     sorted and de-duplicated everywhere (the original's set order was
//     random).
//   - Length caps (username 320, password 4096, tokens 4096, client id 256,
//     client secret 512 bytes) are checked before any lookup or hashing.
//
// Client authentication:
//   - Secrets are 256-bit random values, so a SHA-256 hash compared in
//     constant time suffices (no KDF on the client-credentials hot path,
//     docs/abuse-resistance.md). An unknown client costs the same hash and compare against a
//     dummy. During a rotation the previous secret also verifies until
//     PreviousSecretExpiresAt.
//   - Unknown client, wrong secret, inactive client and a source address
//     outside allowed_ips all get the one identical 401 invalid_client
//     "Client authentication failed" (no enumeration of clients or of their
//     settings); the audit event records the real reason. The response asks
//     for a Basic challenge when Basic was used (§5.2), and when no client
//     authentication was sent to client_credentials.
//   - allowed_ips is a comma list of IPs and CIDRs; empty allows any
//     address; an unparsable entry makes the whole list deny (fail closed;
//     the admin API validates with [permiso.ParseAllowedIPs]).
//   - Public clients may not use client_credentials (unauthorized_client,
//     §4.4). A client's access_token_lifetime, when set, is the lifetime of
//     its service tokens; its refresh_token_lifetime, when set, is the
//     lifetime of refresh tokens issued to it.
//
// Password grant (§4.3):
//   - Lookup by username or email, case-insensitively. An unknown user runs
//     a dummy verification and gets the very same *Error value as a wrong
//     password ("Invalid username or password"). account_disabled (403) and
//     password_expired (403) are answered only after a correct password, so
//     they reveal nothing to someone without it.
//   - Lockout (docs/abuse-resistance.md, Deps.Lockout, shared in Redis):
//     every attempt takes a place on the account's key (its normalized
//     username, also when the login was its email; the typed login for
//     unknown users) BEFORE the password is checked, and places are
//     granted only while confirmed failures plus attempts in flight are
//     below MAX_LOGIN_ATTEMPTS, so of any number of concurrent guesses at
//     most MAX_LOGIN_ATTEMPTS are verified. A locked key gets
//     ErrAccountLocked with locked_until at once, the same for known and
//     unknown usernames; a key whose places are all taken gets
//     ErrTooManyAttempts (429, Retry-After), which counts nothing and
//     locks nothing (audited as login.too_many_attempts); a wrong
//     password turns its place into a failure, a correct one resets the
//     count, an unchecked one gives its place back. The locking failure
//     writes a login.locked audit event. ChangeExpiredPassword and
//     CheckCurrentPassword share this path. User.LockedUntil is only a
//     mirror, written on lock and cleared on success and Unlock, never
//     consulted; neither is it by Authenticate (failed logins by someone
//     else must not end a user's existing sessions). Unlock and
//     LockoutStatus serve the admin API.
//   - Rate limits: the per-IP limits are the HTTP layer's (it picks the
//     limit after parsing the grant); a service client's own
//     rate_limit_per_minute and rate_limit_per_hour are counted here, in
//     the client credentials grant, atomically for both
//     (ClientRateLimitKeys, ClientRateLimits), answered with
//     ErrRateLimited. A lockout or limiter failure fails the request
//     closed (503 temporarily_unavailable).
//   - The authentication time is taken before the user is read; it is the
//     iat of the access token and the IssuedAt of the session and refresh
//     token. After issuing, the user is read again: if the password hash is
//     no longer the one verified, the account was disabled, or
//     TokensRevokedBefore moved past the authentication time, the new
//     session is revoked (store and revocation store) and the answer is
//     invalid_grant. A login racing a password change or revoke-all thus
//     never survives it (login_race.go).
//   - A stored hash the hasher cannot read is logged and answered like a
//     wrong password, after a dummy verification's time (no 500 singling
//     the account out).
//   - A hash with weaker parameters is replaced after a successful login
//     (after issuance and the re-check above), only if it is still the
//     stored one (a concurrent password change wins). This and LastLogin
//     are best effort.
//
// Scope policy (§3.3, §6):
//   - Password and client_credentials: granted = requested ∩ held (nothing
//     requested = everything held). A password grant through an
//     authenticated client that has scopes holds at most the client's
//     scopes too (held = user's ∩ client's); a client without scopes does
//     not narrow it. Nothing grantable from a non-empty
//     request is invalid_scope; a partial match is narrowed and the response
//     says so in "scope".
//   - Refresh: a requested scope outside the original grant is invalid_scope;
//     granted = (requested or the original grant) ∩ the user's current
//     scopes, so roles taken away take effect at the next refresh. The new
//     refresh token keeps the original grant (§6: "identical scope").
//
// Refresh tokens (§6, RFC 9700 §4.14.2):
//   - Opaque 256-bit values stored as SHA-256, looked up by hash, rotated on
//     every use in one store transaction (UseRefreshToken). Each login is a
//     family and a session. On a store that is a permiso.RefreshRotator
//     (PostgreSQL) the common refresh is checked and rotated in one
//     statement, without reading the token first; when that rotates
//     nothing, the token is read and the answer decided as on any store
//     (docs/benchmarks.md, "The refresh path").
//   - A token bound to a client may be refreshed only by that client,
//     authenticated; a first-party token may not be refreshed by a client.
//     These checks run before reuse detection, so a request that could not
//     have used the token anyway does not revoke the family.
//   - A token presented again within ReuseGrace of its rotation (a lost
//     response, a retry, two tabs) gets a fresh pair of its own ONCE, and
//     only while the rotation's replacement is unused: a sibling in the
//     family whose parent is the presented token, and the winner's pair
//     stays valid. The retry is spent atomically in the store
//     (UseRefreshTokenGrace, a compare-and-swap that revokes the presented
//     token with reason grace_used while inserting the sibling), so of
//     concurrent retries exactly one succeeds. A second retry is reuse: a
//     thief cannot fork live branches that detection never catches.
//     ReuseGrace 0 means no grace.
//   - Presented later than that, again after its grace retry, or after its
//     replacement was used (the client that rotated it received its answer,
//     so this is a copy): reuse.
//     A token.reuse_detected audit event and a log line are written first,
//     then the family and the session are revoked in the store and the
//     session's access tokens in the revocation store; the answer is
//     invalid_grant. A token of the family presented later (revoked with
//     reason reuse_detected, or of a revoked session) re-sends the
//     idempotent session revocation, so one lost by a revocation-store
//     failure is not lost for good.
//   - Sessions slide: each refresh moves the session's expiry (and the new
//     refresh token's) to now + the refresh lifetime, as the original
//     service extended refresh expiry on use, but never past
//     session.CreatedAt + RefreshAbsoluteLifetime (SESSION_MAX_LIFETIME_DAYS, default 90 days): a
//     family cannot be kept alive forever. The session's LastActivity
//     update is a second, best-effort write after the rotation transaction.
//   - A refresh does not check password expiry (that gates logins only).
//
// Bearer checks and revocation:
//   - Authenticate accepts only JWT access tokens (type access or service);
//     a refresh token can never pass. One revocation-store call covers jti,
//     sid, the subject's cutoff (the user's, or the client's for service
//     tokens) and the global cutoff of a revoke-all; if the store fails, the
//     check fails with EUNAVAILABLE (503) unless RevocationFailOpen, which
//     logs and continues. User tokens need an active user and an issue time
//     at or after its TokensRevokedBefore; service tokens, and user tokens
//     obtained through a client, need an active client and an issue time at
//     or after its TokensRevokedBefore and created_at. Issue times are
//     compared to the millisecond (permiso.TokenIssuedAt reads them from
//     the jti, a UUIDv7; docs/security-model.md).
//   - Disabling a client revokes what it issued (RevokeAllForClient: its
//     cutoff, its sessions and refresh tokens, its revocation-store
//     cutoff); enabling it again revives nothing. RevokeAll is the global
//     revoke-all: one cutoff in the revocation store for every token, then
//     every user and every client.
//   - Revocation entries outlive the tokens they revoke by one minute, the
//     verifier's maximum clock-skew leeway, so that a revoked token cannot
//     come back to life during the leeway after its exp.
//   - Introspection (RFC 7662): service clients authenticated by credentials
//     and admins (superuser, role admin, or admin:tokens) see any token; a
//     user sees their own tokens, a client the tokens issued to it; everyone
//     else, and every expired, revoked, used, foreign or garbage token, gets
//     exactly {"active":false}. token_type is access_token, refresh_token or,
//     as in the original service, service_token. Store failures are errors,
//     not "inactive". "scope" is the token's scope narrowed to what its
//     subject holds now (the rule of Principal.HasScope). The hint is
//     ignored: the format (a JWS has two dots, an opaque token none) tells
//     the kinds apart (§2.1 allows ignoring it).
//   - Revocation (RFC 7009): only the owner (the user, or the client the
//     token was issued to, §2.1) or an admin may revoke. For anyone else the
//     answer is the same 200 as for an unknown token and nothing happens but
//     an audit event: an error would reveal that the token exists and is
//     valid. Revoking a refresh token revokes its family and its session and
//     so every access token of the session (§2.1 "SHOULD"). Unknown,
//     garbage and expired tokens are a no-op (§2.2).
//   - Logout ends the current session (its refresh family, its access tokens
//     by sid, and the presented token by jti) and counts only sessions that
//     were active; Logout(all) is RevokeAllForUser, which also sets
//     TokensRevokedBefore and the subject cutoff.
//
// ChangeExpiredPassword checks credentials exactly like the password grant
// (the same invalid_grant, the same dummy hash, account_disabled only after
// a correct password), then the password policy and the reuse history
// (422-style permiso EINVALID errors with details on "new_password"), then
// stores the new hash only if the stored one is still the hash it verified
// (UserStore.ChangePasswordIfCurrent; a concurrent change wins and this
// request gets invalid_grant) and revokes every session and token of the
// user. It
// also works for a password that has not expired: knowing it gives the same
// power through a login.
//
// Audit events (login.success, login.failure, client.auth_failure,
// token.issue, token.refresh, token.refresh_failure, token.reuse_detected, token.revoke,
// session.logout, session.revoke_all, password.change) go to the Auditor,
// which batches them off the request path; a metrics-counting Auditor
// wrapper can derive login, issuance and reuse-detection counters from
// them.
package oauth2
