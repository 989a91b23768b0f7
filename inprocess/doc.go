// Package inprocess holds permiso's in-process implementations of the shared
// state interfaces: revocations (Revocations), rate limits (Limiter) and
// login lockout counters (Lockout). They are what `permiso serve` uses
// when REDIS_URL is unset: correct for a single instance, and for tests.
// They follow the same algorithms as the Redis adapters (a sliding-window
// log for rate limits, see docs/abuse-resistance.md) and pass the same
// conformance suites (package sharedstatetest).
//
// State kept here lives in one process only. Behind a load balancer, with
// several instances, a token revoked on one instance would still be accepted
// by the others, each instance would grant its own rate-limit budget and
// count its own login failures, and a restart forgets all of it: run more
// than one instance only with REDIS_URL set (docs/abuse-resistance.md).
package inprocess
