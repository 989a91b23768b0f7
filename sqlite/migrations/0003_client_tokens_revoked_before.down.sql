-- Drops what version 3 added. Tokens of a client disabled and enabled again
-- before the downgrade are then accepted again until they expire.

DROP INDEX idx_user_sessions_client_id;

ALTER TABLE service_clients DROP COLUMN tokens_revoked_before;
