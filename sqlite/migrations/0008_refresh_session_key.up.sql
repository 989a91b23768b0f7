-- permiso, version 8 (docs/data-model.md, docs/benchmarks.md "Refresh:
-- one foreign key for the replacement (2026-12-07)"): a refresh token's
-- user is its session's user, and one foreign key says so.
--   refresh_tokens (user_id, session_id) references user_sessions
--     (user_id, id) ON DELETE CASCADE, in place of user_id -> users and
--     session_id -> user_sessions. A token can no longer name a user other
--     than its session's, and a user's deletion still removes every token
--     of theirs: it removes their sessions (user_sessions.user_id), whose
--     tokens cascade. Every token inserted is checked against one parent
--     row instead of two.
--   idx_user_sessions_user_id becomes unique on (user_id, id), the key
--     that foreign key needs (id alone is unique, so the pair is); it
--     still serves a user's sessions by user_id.
-- SQLite cannot change a table's foreign keys in place: refresh_tokens is
-- built again with the same columns and indexes (no table references it).

DROP INDEX idx_user_sessions_user_id;
CREATE UNIQUE INDEX idx_user_sessions_user_id ON user_sessions (user_id, id);

CREATE TABLE refresh_tokens_v8 (
    id                TEXT NOT NULL PRIMARY KEY,
    token_hash        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    client_id         TEXT REFERENCES service_clients (id) ON DELETE CASCADE,
    session_id        TEXT NOT NULL,
    family_id         TEXT NOT NULL,
    parent_id         TEXT,
    scopes            TEXT NOT NULL DEFAULT '',
    issued_at         TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    used_at           TEXT,
    revoked_at        TEXT,
    revocation_reason TEXT,
    client_ip         TEXT,
    user_agent        TEXT,
    FOREIGN KEY (user_id, session_id) REFERENCES user_sessions (user_id, id) ON DELETE CASCADE
) STRICT;
INSERT INTO refresh_tokens_v8 (id, token_hash, user_id, client_id, session_id, family_id, parent_id, scopes,
    issued_at, expires_at, used_at, revoked_at, revocation_reason, client_ip, user_agent)
SELECT id, token_hash, user_id, client_id, session_id, family_id, parent_id, scopes,
    issued_at, expires_at, used_at, revoked_at, revocation_reason, client_ip, user_agent
FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_v8 RENAME TO refresh_tokens;
CREATE UNIQUE INDEX idx_refresh_tokens_token_hash ON refresh_tokens (token_hash);
CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX idx_refresh_tokens_session_id ON refresh_tokens (session_id);
