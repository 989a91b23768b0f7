-- permiso, version 8 (docs/data-model.md): idx_user_sessions_expires_at
-- again. The deployment guide names it among the indexes an installation
-- has; version 7 had dropped it because every refresh rotation moves a
-- session's expires_at (docs/benchmarks.md, "The refresh path"). The
-- guide's name wins over that saving: the periodic clean-up of expired
-- sessions reads it, and an operator's tooling may look for it. An index
-- of that name created by hand before is kept.

CREATE INDEX IF NOT EXISTS idx_user_sessions_expires_at ON user_sessions (expires_at);
