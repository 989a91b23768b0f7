-- permiso, version 3 (docs/data-model.md, docs/security-model.md):
--   service_clients.tokens_revoked_before, the client's revoke-all cut-off:
--   every token issued through the client before it is refused. Set when the
--   client is disabled and by a global revoke-all; never moved back, so
--   enabling the client again revives nothing. NULL: nothing revoked.
--   idx_user_sessions_client_id, so that revoking a client's sessions (and
--   the ON DELETE CASCADE of a deleted client) does not scan every session.

ALTER TABLE service_clients ADD COLUMN tokens_revoked_before TIMESTAMPTZ;

CREATE INDEX idx_user_sessions_client_id ON user_sessions (client_id) WHERE client_id IS NOT NULL;
