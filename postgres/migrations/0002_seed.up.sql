-- permiso seed, version 2: default roles and scopes with fixed ids
-- (docs/data-model.md). Idempotent: existing rows are left alone.

INSERT INTO roles (id, name, description, created_at, updated_at) VALUES
    ('00000000-0000-4000-8000-000000000001', 'user',    'Standard user role',   now(), now()),
    ('00000000-0000-4000-8000-000000000002', 'admin',   'Administrator role',   now(), now()),
    ('00000000-0000-4000-8000-000000000003', 'service', 'Service client role',  now(), now())
ON CONFLICT DO NOTHING;

INSERT INTO scopes (id, name, description, resource, created_at, updated_at) VALUES
    ('00000000-0000-4000-8000-000000000101', 'read:profile',      'Read your own profile',           'profile',     now(), now()),
    ('00000000-0000-4000-8000-000000000102', 'write:profile',     'Update your own profile',         'profile',     now(), now()),
    ('00000000-0000-4000-8000-000000000103', 'admin:users',       'Manage users',                    'users',       now(), now()),
    ('00000000-0000-4000-8000-000000000104', 'admin:clients',     'Manage service clients',          'clients',     now(), now()),
    ('00000000-0000-4000-8000-000000000105', 'admin:system',      'Administer the system',           'system',      now(), now()),
    ('00000000-0000-4000-8000-000000000106', 'admin:sessions',    'Manage user sessions',            'sessions',    now(), now()),
    ('00000000-0000-4000-8000-000000000107', 'admin:permissions', 'Manage roles and scopes',         'permissions', now(), now()),
    ('00000000-0000-4000-8000-000000000108', 'admin:security',    'Manage security settings',        'security',    now(), now()),
    ('00000000-0000-4000-8000-000000000109', 'admin:audit',       'Read the audit log',              'audit',       now(), now()),
    ('00000000-0000-4000-8000-000000000110', 'admin:logs',        'Read the logs',                   'logs',        now(), now()),
    ('00000000-0000-4000-8000-000000000111', 'admin:tokens',      'Introspect and revoke tokens',    'tokens',      now(), now())
ON CONFLICT DO NOTHING;

-- Links are made by name, so a pre-existing role or scope of that name is
-- reused.

-- Role "user" holds the profile scopes.
INSERT INTO role_scopes (role_id, scope_id)
SELECT r.id, s.id
FROM roles r, scopes s
WHERE r.name = 'user' AND s.name IN ('read:profile', 'write:profile')
ON CONFLICT DO NOTHING;

-- Role "admin" holds every seeded scope.
INSERT INTO role_scopes (role_id, scope_id)
SELECT r.id, s.id
FROM roles r, scopes s
WHERE r.name = 'admin' AND s.name IN (
    'read:profile', 'write:profile', 'admin:users', 'admin:clients',
    'admin:system', 'admin:sessions', 'admin:permissions', 'admin:security',
    'admin:audit', 'admin:logs', 'admin:tokens')
ON CONFLICT DO NOTHING;
