-- permiso, version 7 (docs/data-model.md, docs/benchmarks.md "The refresh
-- path"): fewer indexes written by each refresh rotation, which updates
-- its session (last_activity, expires_at), marks its token used and
-- inserts the replacement.
--   idx_user_sessions_expires_at: read only by the periodic clean-up of
--     expired sessions; as an index on a column every rotation changes it
--     kept the session's update from being a HOT update, so each rotation
--     wrote every index of user_sessions again.
--   idx_refresh_tokens_expires_at, idx_refresh_tokens_family_id: read only
--     by the periodic clean-up and by RevokeRefreshFamily (no request path
--     calls it; reuse detection revokes the session, found by session_id);
--     every replacement inserted wrote both.
-- The clean-ups scan the table instead, once per run.
-- fillfactor leaves room on each page, so that updating a session or
-- marking a token used stays on its page (HOT) and writes no index.

DROP INDEX idx_user_sessions_expires_at;
DROP INDEX idx_refresh_tokens_expires_at;
DROP INDEX idx_refresh_tokens_family_id;
ALTER TABLE user_sessions SET (fillfactor = 80);
ALTER TABLE refresh_tokens SET (fillfactor = 90);
