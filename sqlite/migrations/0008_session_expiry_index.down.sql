-- Drops the index version 8 restored (or kept), as version 7 left the schema.

DROP INDEX IF EXISTS idx_user_sessions_expires_at;
