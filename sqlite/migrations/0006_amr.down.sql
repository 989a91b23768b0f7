-- Drops what version 6 added: tokens then carry amr "pwd" only.

ALTER TABLE authorization_codes DROP COLUMN amr;
ALTER TABLE user_sessions DROP COLUMN amr;
