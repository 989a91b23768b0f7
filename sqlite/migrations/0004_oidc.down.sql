DROP TABLE authorization_codes;
DROP TABLE browser_sessions;
ALTER TABLE service_clients DROP COLUMN token_endpoint_auth_method;
ALTER TABLE service_clients DROP COLUMN grant_types;
ALTER TABLE service_clients DROP COLUMN post_logout_redirect_uris;
ALTER TABLE service_clients DROP COLUMN redirect_uris;
