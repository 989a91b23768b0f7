-- Default roles and scopes with fixed ids (docs/data-model.md, "Seed").
-- Idempotent: every insert ignores rows that already exist, and the links
-- are made by name so a pre-existing role or scope of that name is reused.

INSERT INTO roles (id, name, description, created_at, updated_at)
SELECT v.column1, v.column2, v.column3, n.t, n.t
FROM (VALUES
        ('00000000-0000-4000-8000-000000000001', 'user', 'Standard user role'),
        ('00000000-0000-4000-8000-000000000002', 'admin', 'Administrator role'),
        ('00000000-0000-4000-8000-000000000003', 'service', 'Service client role')
     ) AS v,
     (SELECT strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.' || substr(strftime('%f', 'now'), 4) || '000000Z' AS t) AS n
WHERE true
ON CONFLICT DO NOTHING;

INSERT INTO scopes (id, name, description, resource, created_at, updated_at)
SELECT v.column1, v.column2, v.column3, substr(v.column2, instr(v.column2, ':') + 1), n.t, n.t
FROM (VALUES
        ('00000000-0000-4000-8000-000000000101', 'read:profile', 'Read your own profile'),
        ('00000000-0000-4000-8000-000000000102', 'write:profile', 'Update your own profile'),
        ('00000000-0000-4000-8000-000000000103', 'admin:users', 'Manage users'),
        ('00000000-0000-4000-8000-000000000104', 'admin:clients', 'Manage service clients'),
        ('00000000-0000-4000-8000-000000000105', 'admin:system', 'Administer the system'),
        ('00000000-0000-4000-8000-000000000106', 'admin:sessions', 'Manage user sessions'),
        ('00000000-0000-4000-8000-000000000107', 'admin:permissions', 'Manage roles and scopes'),
        ('00000000-0000-4000-8000-000000000108', 'admin:security', 'Manage security settings'),
        ('00000000-0000-4000-8000-000000000109', 'admin:audit', 'Read the audit log'),
        ('00000000-0000-4000-8000-000000000110', 'admin:logs', 'Read the logs'),
        ('00000000-0000-4000-8000-000000000111', 'admin:tokens', 'Introspect and revoke tokens')
     ) AS v,
     (SELECT strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.' || substr(strftime('%f', 'now'), 4) || '000000Z' AS t) AS n
WHERE true
ON CONFLICT DO NOTHING;

-- Role user: the two profile scopes.
INSERT INTO role_scopes (role_id, scope_id)
SELECT r.id, s.id
FROM roles AS r, scopes AS s
WHERE r.name = 'user' AND s.name IN ('read:profile', 'write:profile')
ON CONFLICT DO NOTHING;

-- Role admin: every seeded scope.
INSERT INTO role_scopes (role_id, scope_id)
SELECT r.id, s.id
FROM roles AS r, scopes AS s
WHERE r.name = 'admin' AND s.name IN (
    'read:profile', 'write:profile', 'admin:users', 'admin:clients',
    'admin:system', 'admin:sessions', 'admin:permissions', 'admin:security',
    'admin:audit', 'admin:logs', 'admin:tokens')
ON CONFLICT DO NOTHING;
