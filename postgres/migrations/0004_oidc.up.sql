-- permiso, version 4 (docs/oidc.md, docs/data-model.md): the OpenID Connect
-- provider's browser flow.
--   service_clients gains the client metadata of RFC 7591 §2 that the
--   authorization code flow needs: redirect_uris and
--   post_logout_redirect_uris (space-separated, compared by exact string
--   match), grant_types (space-separated; "authorization_code" enables the
--   browser flow) and token_endpoint_auth_method ('' is
--   client_secret_basic). Existing clients get none: they keep working as
--   before, with client credentials only.
--   authorization_codes keeps the SHA-256 of each code (never the code),
--   bound to its client, redirect URI and PKCE challenge; used_at and
--   session_id record its one exchange, so that a second presentation
--   revokes what the first one issued (RFC 6749 §4.1.2).
--   browser_sessions marks the user_sessions rows opened by a sign-in on the
--   hosted pages and keeps the SHA-256 of the session cookie's value.

ALTER TABLE service_clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE service_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE service_clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT '';
ALTER TABLE service_clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT '';

CREATE TABLE browser_sessions (
    session_id UUID NOT NULL PRIMARY KEY REFERENCES user_sessions (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    auth_time  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX idx_browser_sessions_token_hash ON browser_sessions (token_hash);

CREATE TABLE authorization_codes (
    code_hash          TEXT NOT NULL PRIMARY KEY,
    client_id          UUID NOT NULL REFERENCES service_clients (id) ON DELETE CASCADE,
    user_id            UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    browser_session_id UUID NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    scopes             TEXT NOT NULL DEFAULT '',
    nonce              TEXT NOT NULL DEFAULT '',
    code_challenge     TEXT NOT NULL,
    auth_time          TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    expires_at         TIMESTAMPTZ NOT NULL,
    used_at            TIMESTAMPTZ,
    session_id         UUID
);
CREATE INDEX idx_authorization_codes_expires_at ON authorization_codes (expires_at);
