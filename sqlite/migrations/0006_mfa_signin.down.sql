-- Drops what version 6 added: tokens then carry amr "pwd" only, and
-- pending mfa_tokens are lost (their sign-ins start again).

DROP TABLE mfa_tokens;

ALTER TABLE authorization_codes DROP COLUMN amr;
ALTER TABLE user_sessions DROP COLUMN amr;
