-- permiso, version 6 (docs/mfa.md, docs/data-model.md): the authentication
-- methods of a sign-in (RFC 8176 amr values, space-separated, in the order
-- they were used: "pwd", "pwd otp").
--   user_sessions.amr: the methods of the sign-in that opened the session
--   (a password-grant login, a code exchange, or a browser session of the
--   hosted pages, which is a user_sessions row too); a refresh keeps them.
--   authorization_codes.amr: the methods of the browser session the code
--   was issued in, carried into the ID and access tokens of its exchange.
-- Rows written before version 6 were password sign-ins: 'pwd'.

ALTER TABLE user_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
