-- permiso, version 8 (docs/data-model.md, docs/benchmarks.md "Refresh:
-- one foreign key for the replacement (2026-12-07)"): a refresh token's
-- user is its session's user, and one foreign key says so.
--   refresh_tokens (user_id, session_id) references user_sessions
--     (user_id, id) ON DELETE CASCADE, in place of user_id -> users and
--     session_id -> user_sessions. A token can no longer name a user other
--     than its session's, and a user's deletion still removes every token
--     of theirs: it removes their sessions (user_sessions.user_id), whose
--     tokens cascade. Every replacement a rotation inserts is checked
--     against one row (the session's, already locked by the rotation)
--     instead of two: the check of users, with its row lock, is gone.
--   idx_user_sessions_user_id becomes unique on (user_id, id), the key
--     that foreign key needs (id alone is unique, so the pair is); it
--     still serves a user's sessions by user_id.
-- idx_refresh_tokens_user_id stays.

DROP INDEX idx_user_sessions_user_id;
CREATE UNIQUE INDEX idx_user_sessions_user_id ON user_sessions (user_id, id);
ALTER TABLE refresh_tokens
    DROP CONSTRAINT refresh_tokens_user_id_fkey,
    DROP CONSTRAINT refresh_tokens_session_id_fkey,
    ADD CONSTRAINT refresh_tokens_session_fkey FOREIGN KEY (user_id, session_id)
        REFERENCES user_sessions (user_id, id) ON DELETE CASCADE;
