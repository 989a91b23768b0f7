-- Drops the index version 8 restored, as version 7 left the schema.

DROP INDEX idx_user_sessions_expires_at;
