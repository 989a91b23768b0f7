// Package config is permiso's typed configuration: one Config struct with a
// field per setting, its defaults, the parsing of environment variables and
// of a .env file, Docker-secret style NAME_FILE indirection, and Validate,
// which reports every problem at once.
//
// # Sources and precedence
//
// Load reads, for every variable listed by Variables, the first of:
//
//  1. the process environment (passed in by the caller as an Env; this
//     package never calls os.Getenv),
//  2. the .env file (by default ./.env, or the file given with --env-file),
//  3. the default (see Defaults).
//
// In each of the first two layers a variable NAME may instead be given as
// NAME_FILE=/path, in which case the value is read from that file with one
// trailing newline removed (Docker and Kubernetes secrets). Setting both
// NAME and NAME_FILE to non-empty values in the same layer is an error. A
// layer that sets either wins over the layers below it, so an environment
// JWT_SECRET_KEY_FILE overrides a JWT_SECRET_KEY in .env.
//
// # Empty values
//
// An empty value means "use the default" for numbers, booleans, durations
// and for settings that cannot meaningfully be empty (APP_NAME, HOST,
// DATABASE_URL, JWT_ALGORITHM, ...). It is a real value where the deployment
// guide or permiso gives emptiness a meaning: DOCS_URL, REDOC_URL and OPENAPI_URL
// (disabled), RATE_LIMIT_* (no limit), ALLOWED_ORIGINS (no CORS),
// ALLOWED_HOSTS (any host), TRUSTED_PROXIES (trust no proxy), LOG_FILE
// (stderr), REDIS_URL (in-process state), secrets and SMTP settings. Each
// Variable's Description says which.
//
// # Lists
//
// List settings (ALLOWED_ORIGINS, TRUSTED_PROXIES, JWT_PREVIOUS_SECRET_KEYS,
// ...) are comma-separated; items are trimmed and empty items dropped. A
// value starting with "[" is read as a JSON array of strings instead, as the
// original Python service (pydantic) accepted.
//
// # Validation
//
// Load calls Validate and returns every parse and validation problem
// together as an Errors value, one line per problem, each naming its
// variable. Non-fatal findings come back as warnings for the caller to log.
package config
