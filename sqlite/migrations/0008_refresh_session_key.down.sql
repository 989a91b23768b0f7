-- Restores the foreign keys of refresh_tokens before version 8 (the table
-- built again) and the plain index on user_sessions (user_id).

CREATE TABLE refresh_tokens_v7 (
    id                TEXT NOT NULL PRIMARY KEY,
    token_hash        TEXT NOT NULL,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id         TEXT REFERENCES service_clients (id) ON DELETE CASCADE,
    session_id        TEXT NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    family_id         TEXT NOT NULL,
    parent_id         TEXT,
    scopes            TEXT NOT NULL DEFAULT '',
    issued_at         TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    used_at           TEXT,
    revoked_at        TEXT,
    revocation_reason TEXT,
    client_ip         TEXT,
    user_agent        TEXT
) STRICT;
INSERT INTO refresh_tokens_v7 (id, token_hash, user_id, client_id, session_id, family_id, parent_id, scopes,
    issued_at, expires_at, used_at, revoked_at, revocation_reason, client_ip, user_agent)
SELECT id, token_hash, user_id, client_id, session_id, family_id, parent_id, scopes,
    issued_at, expires_at, used_at, revoked_at, revocation_reason, client_ip, user_agent
FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_v7 RENAME TO refresh_tokens;
CREATE UNIQUE INDEX idx_refresh_tokens_token_hash ON refresh_tokens (token_hash);
CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX idx_refresh_tokens_session_id ON refresh_tokens (session_id);

DROP INDEX idx_user_sessions_user_id;
CREATE INDEX idx_user_sessions_user_id ON user_sessions (user_id);
