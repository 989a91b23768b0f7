// Package testwire builds, for tests, the parts cmd/permiso wires into the
// services, with test settings: argon2id with its test parameters (and
// Hash, a stored password's hash, with any hasher), HS256 and ES256
// signers, the box of second-factor secrets, a mailer sending through a
// real SMTP server the test starts, and a Redis client whose server is
// down.
package testwire

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/argon2id"
	"github.com/permiso/permiso/internal/smtptest"
	"github.com/permiso/permiso/jwt"
	"github.com/permiso/permiso/mail"
	"github.com/permiso/permiso/mfa"
	"github.com/permiso/permiso/redis"
)

// Hasher is argon2id with the test parameters (cheap, same algorithm).
func Hasher() *argon2id.Hasher {
	return argon2id.New(argon2id.Options{Params: argon2id.TestParams()})
}

// Hash is h's hash of password, for a user or client a test stores; it
// fails the test when h fails.
func Hash(tb testing.TB, h permiso.PasswordHasher, password string) string {
	tb.Helper()
	hash, err := h.Hash(tb.Context(), password)
	if err != nil {
		tb.Fatalf("hash the password: %v", err)
	}
	return hash
}

// HS256 is an access-token signer with the shared secret, issuing as
// issuer on the clock now (nil: the wall clock).
func HS256(tb testing.TB, secret, issuer string, now func() time.Time) *jwt.Signer {
	tb.Helper()
	return signer(tb, jwt.Options{Algorithm: jwt.HS256, Secret: []byte(secret), Issuer: issuer, Now: now})
}

// ES256 is an ID-token signer with its keys in keys, issuing as issuer
// tokens living at most maxLifetime, on the clock now (nil: the wall
// clock).
func ES256(tb testing.TB, issuer string, keys permiso.KeyStore, maxLifetime time.Duration, now func() time.Time) *jwt.Signer {
	tb.Helper()
	return signer(tb, jwt.Options{Algorithm: jwt.ES256, Issuer: issuer, Keys: keys, MaxTokenLifetime: maxLifetime, Now: now})
}

func signer(tb testing.TB, opts jwt.Options) *jwt.Signer {
	tb.Helper()
	s, err := jwt.New(tb.Context(), opts)
	if err != nil {
		tb.Fatalf("jwt.New: %v", err)
	}
	return s
}

// Box is the box of second-factor secrets under the key of mfa.KeySize
// bytes fill.
func Box(tb testing.TB, fill byte) *mfa.Box {
	tb.Helper()
	b, err := mfa.NewBox(bytes.Repeat([]byte{fill}, mfa.KeySize))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Mailer starts an SMTP server offering STARTTLS and returns it with a
// mailer that sends through it from permiso <noreply@example.com>.
func Mailer(tb testing.TB) (*smtptest.Server, permiso.Mailer) {
	tb.Helper()
	srv := smtptest.Start(tb, smtptest.Options{StartTLS: true})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "permiso <noreply@example.com>",
		StartTLS: true, TLSConfig: &tls.Config{RootCAs: srv.RootCAs}, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return srv, m
}

// RedisDown is a client of a Redis that never answers (nothing listens on
// 127.0.0.1:1): every command fails at once, without retries, as when the
// shared state is unreachable (docs/abuse-resistance.md, "Failure
// policy"). It is closed when the test ends.
func RedisDown(tb testing.TB) *redis.Client {
	tb.Helper()
	c, err := redis.Open("redis://127.0.0.1:1/0", redis.Options{DialTimeout: 100 * time.Millisecond,
		Timeout: 100 * time.Millisecond, MaxRetries: -1, DialAttempts: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
