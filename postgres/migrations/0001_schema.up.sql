-- permiso schema, version 1: every table and index of docs/data-model.md.

CREATE TABLE users (
    id                    UUID PRIMARY KEY,
    username              TEXT NOT NULL,
    email                 TEXT NOT NULL,
    password_hash         TEXT NOT NULL,
    first_name            TEXT,
    last_name             TEXT,
    display_name          TEXT,
    bio                   TEXT,
    is_active             BOOLEAN NOT NULL DEFAULT true,
    is_verified           BOOLEAN NOT NULL DEFAULT false,
    is_superuser          BOOLEAN NOT NULL DEFAULT false,
    last_login            TIMESTAMPTZ,
    failed_login_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until          TIMESTAMPTZ,
    password_changed_at   TIMESTAMPTZ NOT NULL,
    tokens_revoked_before TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX idx_users_username ON users (lower(username));
CREATE UNIQUE INDEX idx_users_email ON users (lower(email));
CREATE INDEX idx_users_created_at ON users (created_at, id);

CREATE TABLE roles (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX idx_roles_name ON roles (name);

CREATE TABLE scopes (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    resource    TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX idx_scopes_name ON scopes (name);
CREATE INDEX idx_scopes_resource ON scopes (resource);

CREATE TABLE user_roles (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id UUID NOT NULL REFERENCES roles (id) ON DELETE RESTRICT,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX idx_user_roles_role_id ON user_roles (role_id);

CREATE TABLE role_scopes (
    role_id  UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    scope_id UUID NOT NULL REFERENCES scopes (id) ON DELETE RESTRICT,
    PRIMARY KEY (role_id, scope_id)
);
CREATE INDEX idx_role_scopes_scope_id ON role_scopes (scope_id);

CREATE TABLE service_clients (
    id                         UUID PRIMARY KEY,
    client_id                  TEXT NOT NULL,
    secret_hash                TEXT NOT NULL,
    previous_secret_hash       TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    name                       TEXT NOT NULL,
    description                TEXT,
    client_type                TEXT NOT NULL DEFAULT 'confidential'
                               CHECK (client_type IN ('confidential', 'public')),
    is_active                  BOOLEAN NOT NULL DEFAULT true,
    is_trusted                 BOOLEAN NOT NULL DEFAULT false,
    access_token_lifetime      INTEGER NOT NULL DEFAULT 0,
    refresh_token_lifetime     INTEGER,
    rate_limit_per_minute      INTEGER NOT NULL DEFAULT 60,
    rate_limit_per_hour        INTEGER NOT NULL DEFAULT 1000,
    last_used                  TIMESTAMPTZ,
    total_requests             BIGINT NOT NULL DEFAULT 0,
    contact_email              TEXT,
    website_url                TEXT,
    allowed_ips                TEXT,
    webhook_url                TEXT,
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX idx_service_clients_client_id ON service_clients (client_id);

CREATE TABLE service_client_scopes (
    service_client_id UUID NOT NULL REFERENCES service_clients (id) ON DELETE CASCADE,
    scope_id          UUID NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    PRIMARY KEY (service_client_id, scope_id)
);

CREATE TABLE user_sessions (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id     UUID REFERENCES service_clients (id) ON DELETE CASCADE,
    ip_address    TEXT NOT NULL,
    user_agent    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    last_activity TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX idx_user_sessions_user_id ON user_sessions (user_id);
CREATE INDEX idx_user_sessions_expires_at ON user_sessions (expires_at);

CREATE TABLE refresh_tokens (
    id                UUID PRIMARY KEY,
    token_hash        TEXT NOT NULL,
    user_id           UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id         UUID REFERENCES service_clients (id) ON DELETE CASCADE,
    session_id        UUID NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    family_id         UUID NOT NULL,
    parent_id         UUID,
    scopes            TEXT NOT NULL DEFAULT '',
    issued_at         TIMESTAMPTZ NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    used_at           TIMESTAMPTZ,
    revoked_at        TIMESTAMPTZ,
    revocation_reason TEXT,
    client_ip         TEXT,
    user_agent        TEXT
);
CREATE UNIQUE INDEX idx_refresh_tokens_token_hash ON refresh_tokens (token_hash);
CREATE INDEX idx_refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX idx_refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE password_history (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_password_history_user_id ON password_history (user_id, created_at);

CREATE TABLE action_tokens (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    token_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX idx_action_tokens_token_hash ON action_tokens (token_hash);
CREATE INDEX idx_action_tokens_user_id ON action_tokens (user_id);

CREATE TABLE audit_events (
    id          UUID PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    result      TEXT NOT NULL,
    ip_address  TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    details     JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_audit_events_occurred_at ON audit_events (occurred_at, id);
CREATE INDEX idx_audit_events_action ON audit_events (action, occurred_at);
CREATE INDEX idx_audit_events_actor_id ON audit_events (actor_id, occurred_at);

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ,
    expires_at  TIMESTAMPTZ
);
