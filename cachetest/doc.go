// Package cachetest is the behavioural conformance suite for permiso's
// shared-state adapters (the "cache" side): RunRevocation, RunRateLimiter
// and RunLockout. Every implementation, in process (memory)
// or shared (redis), runs the same suite, so the two stay equal: a backend is
// trusted because this suite passes against the real thing, not because a
// mock does.
//
// Time is injected through a Clock. In-process stores take Clock.Now as
// their time source and the suite advances a fake clock, so expiry is tested
// without sleeping. Backends whose TTLs expire in real time (Redis) get a
// RealClock, whose Advance sleeps; the suite keeps those sleeps few and short
// by running its expiry checks together.
package cachetest
