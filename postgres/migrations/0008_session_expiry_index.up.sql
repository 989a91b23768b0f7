-- permiso, version 8 (docs/data-model.md): idx_user_sessions_expires_at
-- again. The deployment guide names it among the indexes an installation
-- has; version 7 had dropped it because every refresh rotation moves a
-- session's expires_at (docs/benchmarks.md, "The refresh path"). The
-- guide's name wins over that saving: the periodic clean-up of expired
-- sessions reads it, and an operator's tooling may look for it.
--
-- An operator may have created it already, by the guide's CREATE INDEX
-- CONCURRENTLY (docs/deployment.md, "Indexes"): a valid index of that name
-- is kept, and one left invalid by an interrupted concurrent build is
-- built again. The build locks user_sessions against writes while it runs;
-- on a large table create the index concurrently first (docs/deployment.md,
-- "Upgrade notes").

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index
               WHERE indexrelid = to_regclass('idx_user_sessions_expires_at') AND NOT indisvalid) THEN
        DROP INDEX idx_user_sessions_expires_at;
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS idx_user_sessions_expires_at ON user_sessions (expires_at);
