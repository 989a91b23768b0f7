-- Restores the indexes version 7 dropped.

CREATE INDEX idx_refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX idx_user_sessions_expires_at ON user_sessions (expires_at);
