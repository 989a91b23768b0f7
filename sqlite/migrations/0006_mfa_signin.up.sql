-- permiso, version 6 (docs/mfa.md, docs/data-model.md): sign-in with a
-- second factor. The authentication
-- methods of a sign-in (RFC 8176 amr values, space-separated, in the order
-- they were used: "pwd", "pwd otp").
--   user_sessions.amr: the methods of the sign-in that opened the session
--   (a password-grant login, a code exchange, or a browser session of the
--   hosted pages, which is a user_sessions row too); a refresh keeps them.
--   authorization_codes.amr: the methods of the browser session the code
--   was issued in, carried into the ID and access tokens of its exchange.
-- Rows written before version 6 were password sign-ins: 'pwd'.

ALTER TABLE user_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- mfa_tokens (docs/mfa.md, "Sign-in"): the mfa_token a password grant
-- answers with when a second factor is needed. Only its SHA-256 is kept
-- (token_hash). It is bound to the user and to the client that asked
-- (client_id; NULL for a first-party login without client
-- authentication), single use (used_at, set by one conditional UPDATE),
-- and lives five minutes. enroll marks a token of
-- mfa_enrollment_required, which the enrollment routes also accept as a
-- bearer. scopes are the scopes the password grant decided (space-
-- separated); auth_time is when the password was checked.
CREATE TABLE mfa_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT REFERENCES service_clients (id) ON DELETE CASCADE,
    enroll     INTEGER NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '',
    auth_time  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE INDEX idx_mfa_tokens_user_id ON mfa_tokens (user_id);
CREATE INDEX idx_mfa_tokens_expires_at ON mfa_tokens (expires_at);
