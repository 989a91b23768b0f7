-- The PostgreSQL schema of the original Python service (its SQLAlchemy
-- models), as docs/migrating.md describes it: the database that
-- `permiso import --from` reads. Tests build it with this file. Every
-- entity table has the base columns id, created_at and updated_at; the
-- redundant unique indexes ix_<table>_id come from index=True, unique=True
-- on id. Python-side defaults have no DEFAULT here, as in the original.

CREATE TABLE users (
    id                         UUID NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    username                   VARCHAR(50) NOT NULL,
    email                      VARCHAR(255) NOT NULL,
    password_hash              VARCHAR(255) NOT NULL,
    first_name                 VARCHAR(100),
    last_name                  VARCHAR(100),
    display_name               VARCHAR(100),
    bio                        TEXT,
    is_active                  BOOLEAN NOT NULL DEFAULT 'true',
    is_verified                BOOLEAN NOT NULL,
    is_superuser               BOOLEAN NOT NULL,
    last_login                 TIMESTAMPTZ,
    failed_login_attempts      INTEGER NOT NULL DEFAULT '0',
    locked_until               TIMESTAMPTZ,
    password_changed_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    email_verification_token   VARCHAR(255),
    email_verification_sent_at TIMESTAMPTZ,
    password_reset_token       VARCHAR(255),
    password_reset_sent_at     TIMESTAMPTZ,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_users_id ON users (id);
CREATE UNIQUE INDEX ix_users_username ON users (username);
CREATE UNIQUE INDEX ix_users_email ON users (email);
COMMENT ON COLUMN users.password_hash IS 'Argon2 password hash';
COMMENT ON COLUMN users.email_verification_token IS 'Email verification token';
COMMENT ON COLUMN users.password_reset_token IS 'Password reset token';

CREATE TABLE roles (
    id          UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    name        VARCHAR(50) NOT NULL,
    description TEXT,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_roles_id ON roles (id);
CREATE UNIQUE INDEX ix_roles_name ON roles (name);
COMMENT ON COLUMN roles.name IS 'Role name';

CREATE TABLE scopes (
    id          UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    name        VARCHAR(100) NOT NULL,
    description TEXT,
    resource    VARCHAR(50),
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_scopes_id ON scopes (id);
CREATE UNIQUE INDEX ix_scopes_name ON scopes (name);
CREATE INDEX ix_scopes_resource ON scopes (resource);
COMMENT ON COLUMN scopes.name IS 'Scope name in action:resource form';

CREATE TABLE service_clients (
    id                     UUID NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    client_id              VARCHAR(255) NOT NULL,
    client_secret_hash     VARCHAR(255) NOT NULL,
    name                   VARCHAR(100) NOT NULL,
    description            TEXT,
    client_type            VARCHAR(20) NOT NULL,
    is_active              BOOLEAN NOT NULL,
    is_trusted             BOOLEAN NOT NULL,
    access_token_lifetime  INTEGER NOT NULL,
    refresh_token_lifetime INTEGER,
    rate_limit_per_minute  INTEGER NOT NULL,
    rate_limit_per_hour    INTEGER NOT NULL,
    last_used              TIMESTAMPTZ,
    total_requests         INTEGER NOT NULL DEFAULT '0',
    contact_email          VARCHAR(255),
    website_url            VARCHAR(500),
    allowed_ips            TEXT,
    webhook_url            VARCHAR(500),
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_service_clients_id ON service_clients (id);
CREATE UNIQUE INDEX ix_service_clients_client_id ON service_clients (client_id);
COMMENT ON COLUMN service_clients.client_secret_hash IS 'Argon2 hash of the client secret';

CREATE TABLE refresh_tokens (
    id                UUID NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    token_id          VARCHAR(255) NOT NULL,
    token_hash        VARCHAR(255) NOT NULL,
    expires_at        TIMESTAMPTZ NOT NULL,
    issued_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_revoked        BOOLEAN NOT NULL,
    is_used           BOOLEAN NOT NULL,
    client_ip         VARCHAR(45),
    user_agent        TEXT,
    token_family      VARCHAR(255),
    parent_token_id   VARCHAR(255),
    last_used_at      TIMESTAMPTZ,
    use_count         INTEGER NOT NULL DEFAULT '0',
    revoked_at        TIMESTAMPTZ,
    revocation_reason VARCHAR(100),
    user_id           UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_refresh_tokens_id ON refresh_tokens (id);
CREATE UNIQUE INDEX ix_refresh_tokens_token_id ON refresh_tokens (token_id);
CREATE INDEX ix_refresh_tokens_token_family ON refresh_tokens (token_family);

CREATE TABLE user_sessions (
    id                UUID NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    session_id        VARCHAR(255) NOT NULL,
    last_activity     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at        TIMESTAMPTZ NOT NULL,
    ip_address        VARCHAR(45) NOT NULL,
    user_agent        TEXT,
    is_active         BOOLEAN NOT NULL,
    access_token_jti  VARCHAR(255),
    refresh_token_jti VARCHAR(255),
    user_id           UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ix_user_sessions_id ON user_sessions (id);
CREATE UNIQUE INDEX ix_user_sessions_session_id ON user_sessions (session_id);

CREATE TABLE user_roles (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
COMMENT ON TABLE user_roles IS 'Association table between users and roles';

CREATE TABLE role_scopes (
    role_id  UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    scope_id UUID NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, scope_id)
);
COMMENT ON TABLE role_scopes IS 'Association table between roles and scopes';

CREATE TABLE service_client_scopes (
    service_client_id UUID NOT NULL REFERENCES service_clients (id) ON DELETE CASCADE,
    scope_id          UUID NOT NULL REFERENCES scopes (id) ON DELETE CASCADE,
    PRIMARY KEY (service_client_id, scope_id)
);
COMMENT ON TABLE service_client_scopes IS 'Association table between service clients and scopes';
