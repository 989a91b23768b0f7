-- Reverts version 1: drops every table (schema_migrations is kept; the
-- migrator owns it).
DROP TABLE IF EXISTS signing_keys;
DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS action_tokens;
DROP TABLE IF EXISTS password_history;
DROP TABLE IF EXISTS refresh_tokens;
DROP TABLE IF EXISTS user_sessions;
DROP TABLE IF EXISTS service_client_scopes;
DROP TABLE IF EXISTS service_clients;
DROP TABLE IF EXISTS role_scopes;
DROP TABLE IF EXISTS user_roles;
DROP TABLE IF EXISTS scopes;
DROP TABLE IF EXISTS roles;
DROP TABLE IF EXISTS users;
