-- permiso, version 5 (docs/mfa.md, docs/data-model.md): multi-factor
-- authentication.
--   mfa_factors holds one row per user and kind of second factor ('totp'
--   today). secret is the factor's secret sealed with AES-256-GCM under
--   MFA_ENCRYPTION_KEY (mfa.Box: "v1.<key id>.<base64url>"), never the
--   plaintext. A row without confirmed_at is a pending enrollment, which
--   sign-in ignores.
--   mfa_recovery_codes keeps the SHA-256 of each recovery code (never the
--   code); used_at marks a code spent.

CREATE TABLE mfa_factors (
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    secret       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, kind)
);

CREATE TABLE mfa_recovery_codes (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);
