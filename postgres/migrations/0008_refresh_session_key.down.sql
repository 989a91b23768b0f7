-- Restores the foreign keys of refresh_tokens before version 8 and the
-- plain index on user_sessions (user_id).

ALTER TABLE refresh_tokens
    DROP CONSTRAINT refresh_tokens_session_fkey,
    ADD CONSTRAINT refresh_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    ADD CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES user_sessions (id) ON DELETE CASCADE;
DROP INDEX idx_user_sessions_user_id;
CREATE INDEX idx_user_sessions_user_id ON user_sessions (user_id);
