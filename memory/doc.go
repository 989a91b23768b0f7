// Package memory holds permiso's in-process implementations of the shared
// state interfaces (revocations today; rate limits and lockout counters
// belong here too). They are what `permiso serve` uses when REDIS_URL is
// unset: correct for a single instance, and for tests.
//
// State kept here lives in one process only. Behind a load balancer, with
// several instances, a token revoked on one instance would still be accepted
// by the others, and a restart forgets every revocation: run more than one
// instance only with REDIS_URL set (SPEC §1, §4).
package memory
