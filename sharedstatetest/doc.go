// Package sharedstatetest is the behavioural conformance suite for the
// implementations of permiso's shared-state interfaces (rate limits, login
// lockout, revocations, used-once keys, and the Checker that sends them together):
// RunRateLimiter, RunLockout, RunRevocation, RunOnce and RunChecker. Every
// implementation, in process (package inprocess) or shared (package redis),
// runs the same suite, so the two stay equal: a backend is
// trusted because this suite passes against the real thing, not because a
// mock does.
//
// Time is injected through a testclock.Clock. In-process stores take its Now
// as their time source and the suite advances a fake clock (testclock.New),
// so expiry is tested without sleeping. Backends whose TTLs expire in real
// time (Redis) get a real one (testclock.Real), whose Advance sleeps; the
// suite keeps those sleeps few and short by running its expiry checks
// together.
package sharedstatetest
