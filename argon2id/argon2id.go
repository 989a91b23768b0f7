// Package argon2id implements permiso.PasswordHasher with Argon2id
// (RFC 9106) from golang.org/x/crypto/argon2.
//
// Hashes are PHC strings in the form written by the reference C library and
// by Python's argon2-cffi, which the original permiso service used:
//
//	$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. Any well-formed Argon2id
// v19 hash within sane bounds verifies, whatever its parameters; hashes whose
// parameters differ from the current ones are reported as needing a
// rehash, so that users move to the current parameters at their next login.
// A stored memory cost above MaxStoredMemory (4 × the larger of the current
// and default costs) is refused as invalid. Every Verify costs at least one
// verification with the current parameters: weaker hashes are padded and
// unreadable ones cost a dummy verification (timing.go), so that neither
// an imported cheap hash nor a broken row tells an account from an unknown
// user by timing.
//
// Password hashing is deliberately slow and memory hungry, so a Hasher runs
// at most a fixed number of hashes at once. A caller waits a bounded time for
// a slot and then gets a permiso EUNAVAILABLE error (HTTP 503 with
// Retry-After), never an unbounded queue (docs/architecture.md, "Performance by design").
package argon2id

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/permiso/permiso"
)

// Bounds on the parameters accepted from a stored hash. A hostile or
// corrupted row must not make a single verification allocate unbounded
// memory or run for minutes.
const (
	// MaxMemoryKiB is the largest accepted memory cost: 1 GiB.
	MaxMemoryKiB = 1 << 20
	// MaxTime is the largest accepted number of passes.
	MaxTime = 20
	// MaxParallelism is the largest accepted number of lanes.
	MaxParallelism = 16
	// MinSaltLen and MaxSaltLen bound the decoded salt length in bytes.
	MinSaltLen, MaxSaltLen = 8, 64
	// MinKeyLen and MaxKeyLen bound the decoded hash length in bytes.
	MinKeyLen, MaxKeyLen = 16, 128
)

// DefaultMaxWait is how long Hash and Verify wait for a free slot by
// default before giving up with EUNAVAILABLE.
const DefaultMaxWait = 2 * time.Second

// ErrInvalidHash is returned (wrapped, with the reason) by Verify when the
// stored hash is not a well-formed Argon2id v19 PHC string within the
// accepted bounds. It is not a permiso.Error, so the HTTP layer treats it as
// an internal error and never shows it.
var ErrInvalidHash = errors.New("argon2id: invalid password hash")

// Params are the Argon2id cost parameters.
type Params struct {
	// Memory is the memory cost in KiB (PHC "m").
	Memory uint32
	// Time is the number of passes over the memory (PHC "t").
	Time uint32
	// Parallelism is the number of lanes (PHC "p").
	Parallelism uint8
	// SaltLen is the length of newly generated salts in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived hash in bytes.
	KeyLen uint32
}

// DefaultParams returns the parameters used for new hashes: 64 MiB of
// memory, 4 passes, 1 lane, a 16-byte salt and a 32-byte hash.
//
// This is above every OWASP Argon2id recommendation (m=47104/t=1 ...
// m=7168/t=5, all p=1) and above the original service's m=65536,t=3,p=1,
// so the original hashes verify and are flagged for rehash. The extra
// strength comes from the time cost rather than from parallelism: lanes
// barely raise an attacker's cost, while p=1 keeps one hash on one core,
// which is what the bounded-concurrency semaphore (one slot per CPU) assumes.
// Memory stays at 64 MiB so that the peak memory of the hasher is
// predictable: Concurrency × 64 MiB.
func DefaultParams() Params {
	return Params{Memory: 64 * 1024, Time: 4, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

// TestParams returns deliberately weak, fast parameters for tests in other
// packages. Never use them in production.
func TestParams() Params {
	return Params{Memory: 64, Time: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

// Validate reports whether p can be used to create hashes: every value
// within the bounds above and Memory at least 8 KiB per lane, as RFC 9106
// requires.
func (p Params) Validate() error {
	switch {
	case p.Time < 1 || p.Time > MaxTime:
		return fmt.Errorf("argon2id: time cost %d out of range [1, %d]", p.Time, MaxTime)
	case p.Parallelism < 1 || p.Parallelism > MaxParallelism:
		return fmt.Errorf("argon2id: parallelism %d out of range [1, %d]", p.Parallelism, MaxParallelism)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > MaxMemoryKiB:
		return fmt.Errorf("argon2id: memory cost %d KiB out of range [8*p, %d]", p.Memory, MaxMemoryKiB)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("argon2id: salt length %d out of range [%d, %d]", p.SaltLen, MinSaltLen, MaxSaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("argon2id: key length %d out of range [%d, %d]", p.KeyLen, MinKeyLen, MaxKeyLen)
	}
	return nil
}

// Options configure a Hasher. Zero values select the defaults.
type Options struct {
	// Params are the parameters of new hashes; zero means DefaultParams().
	Params Params
	// Concurrency is the number of hashes that may run at once; zero or
	// less means runtime.NumCPU().
	Concurrency int
	// MaxWait bounds how long Hash and Verify wait for a free slot; zero
	// means DefaultMaxWait, a negative value means do not wait at all.
	MaxWait time.Duration
	// ReturnMemoryAfter, when positive, returns the memory of finished
	// hashes to the operating system (debug.FreeOSMemory) once no hash has
	// run for that long: each hash allocates Params.Memory, which the Go
	// runtime would otherwise keep for minutes (docs/benchmarks.md,
	// "Memory"). It runs at most once per ReturnMemoryAfter, and only
	// after hashing.
	ReturnMemoryAfter time.Duration
}

// Hasher hashes and verifies passwords with Argon2id. It implements
// permiso.PasswordHasher and is safe for concurrent use.
type Hasher struct {
	params  Params
	slots   chan struct{}
	maxWait time.Duration
	dummy   string
	// derive is argon2.IDKey; tests replace it to observe concurrency.
	derive func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
	idle   *idleReturn
}

var _ permiso.PasswordHasher = (*Hasher)(nil)

// New returns a Hasher configured by opts. It panics if opts.Params is
// non-zero and invalid (see Params.Validate): parameters are fixed by the
// program, not by user input.
func New(opts Options) *Hasher {
	p := opts.Params
	if p == (Params{}) {
		p = DefaultParams()
	}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	n := opts.Concurrency
	if n <= 0 {
		n = runtime.NumCPU()
	}
	wait := opts.MaxWait
	if wait == 0 {
		wait = DefaultMaxWait
	}
	h := &Hasher{
		params:  p,
		slots:   make(chan struct{}, n),
		maxWait: wait,
		derive:  argon2.IDKey,
	}
	if opts.ReturnMemoryAfter > 0 {
		h.idle = &idleReturn{after: opts.ReturnMemoryAfter, free: debug.FreeOSMemory}
	}
	// The dummy hash has the current parameters and a random salt and
	// hash: verifying against it costs exactly a real verification, and no
	// password matches it.
	h.dummy = encode(p, randomBytes(p.SaltLen), randomBytes(p.KeyLen))
	return h
}

// Params returns the parameters used for new hashes.
func (h *Hasher) Params() Params { return h.params }

// Hash returns a PHC string for password with a fresh random salt and the
// current parameters. It returns an EUNAVAILABLE error when no slot became
// free within the configured wait, or when ctx ended while waiting.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	p := h.params
	defer h.release(p.Memory)
	salt := randomBytes(p.SaltLen)
	key := h.derive([]byte(password), salt, p.Time, p.Memory, p.Parallelism, p.KeyLen)
	return encode(p, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, and
// whether encoded should be replaced by a new hash because one of its
// parameters is weaker than the current ones or its hash length differs.
//
// A malformed or out-of-bounds hash (memory above MaxStoredMemory
// included) gives an error wrapping ErrInvalidHash, after the work of one
// verification with the current parameters, so that it costs the same as
// any other account (timing.go). A busy hasher gives an EUNAVAILABLE error.
//
// Every verification costs at least one with the current parameters: a
// weaker stored hash is padded with extra work (timing.go), so a login for
// an account with an old, cheaper hash takes as long as one for an unknown
// user (VerifyDummy).
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err == nil {
		err = h.checkStoredMemory(p)
	}
	if err != nil {
		if werr := h.dummyWork(ctx, password); werr != nil {
			return false, false, werr
		}
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	got := h.derive([]byte(password), salt, p.Time, p.Memory, p.Parallelism, p.KeyLen)
	h.pad(password, p)
	// The padding allocated the current memory cost: every verification
	// is collected alike, whatever the stored hash's cost.
	h.release(max(p.Memory, h.params.Memory))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, h.needsRehash(p), nil
}

// Check reports whether Verify can check a password against encoded: nil
// for a well-formed Argon2id v19 PHC string within the accepted bounds
// (MaxStoredMemory included), otherwise an error wrapping ErrInvalidHash
// with the reason. It hashes nothing, so it is cheap: permiso import uses
// it to refuse, before writing anything, hashes that could never verify.
func (h *Hasher) Check(encoded string) error {
	p, _, _, err := decode(encoded)
	if err != nil {
		return err
	}
	return h.checkStoredMemory(p)
}

// DummyHash returns a valid hash with the current parameters that no
// password matches. Verifying against it costs the same as a real
// verification.
func (h *Hasher) DummyHash() string { return h.dummy }

// VerifyDummy runs a verification against DummyHash and discards the
// result, so that a login for an unknown user takes as long as one for a
// known user (as HashiCorp Vault's userpass backend does). It returns only
// the errors Verify returns for a busy hasher or an ended context.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// needsRehash reports whether a hash with parameters p should be
// replaced at the next login: its costs or shape differ from the current
// parameters, in either direction. A weaker hash is strengthened; a
// stronger one is brought down to what the operator configured, so that
// lowering PASSWORD_HASH_MEMORY_KIB lowers the memory of every later login.
// Only a longer salt is kept, being no cost at all.
func (h *Hasher) needsRehash(p Params) bool {
	cur := h.params
	return p.Memory != cur.Memory || p.Time != cur.Time || p.Parallelism != cur.Parallelism ||
		p.KeyLen != cur.KeyLen || p.SaltLen < cur.SaltLen
}

func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return permiso.Wrap(permiso.EUNAVAILABLE, "request cancelled while waiting for a password check", err)
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.maxWait < 0 {
		return busy()
	}
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return busy()
	case <-ctx.Done():
		return permiso.Wrap(permiso.EUNAVAILABLE, "request cancelled while waiting for a password check", ctx.Err())
	}
}

// collectAbove is the memory cost (KiB) from which a finished hash's
// memory is collected before its slot is given back.
const collectAbove = 16 * 1024

// release gives back the slot of a hash of memKiB. A hash's memory, all of
// it allocated at once (64 MiB by default), is garbage when it returns; a
// hash that takes the slot next allocates as much again before the
// collector has run, so that the heap held up to twice the memory of the
// hashes running. Collecting first (a cycle marks only the small live
// heap: the hash's blocks hold no pointers) bounds the memory of password
// checks by PASSWORD_HASH_CONCURRENCY × PASSWORD_HASH_MEMORY_KIB
// (docs/benchmarks.md, "Memory").
func (h *Hasher) release(memKiB uint32) {
	if memKiB >= collectAbove {
		runtime.GC()
	}
	<-h.slots
	if h.idle != nil {
		h.idle.hashed(func() bool { return len(h.slots) == 0 })
	}
}

func busy() error {
	return permiso.Errorf(permiso.EUNAVAILABLE, "too many concurrent password checks; retry shortly")
}

func randomBytes(n uint32) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand.Read does not fail on supported platforms.
		panic("argon2id: reading random bytes: " + err.Error())
	}
	return b
}

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC string, accepting only argon2id, version 19, the
// parameters m, t, p in that order, canonical decimals and unpadded base64,
// all within the package bounds. The returned Params carry the decoded salt
// and key lengths.
func decode(s string) (Params, []byte, []byte, error) {
	invalid := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrInvalidHash, why)
	}
	// Refuse absurdly long input before splitting it.
	if len(s) > 512 {
		return invalid("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return invalid("not a PHC string with 5 fields")
	}
	if parts[1] != "argon2id" {
		return invalid("unsupported algorithm (only argon2id)")
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return invalid("missing version")
	}
	if n, err := parseUint(v, 255); err != nil || n != argon2.Version {
		return invalid("unsupported version (only 19)")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return invalid("parameters must be m, t, p")
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		raw, ok := strings.CutPrefix(kv[i], name)
		if !ok {
			return invalid("parameters must be m, t, p")
		}
		n, err := parseUint(raw, MaxMemoryKiB)
		if err != nil {
			return invalid("bad parameter " + name[:1])
		}
		vals[i] = n
	}
	p := Params{Memory: uint32(vals[0]), Time: uint32(vals[1])}
	if vals[2] < 1 || vals[2] > MaxParallelism {
		return invalid("parallelism out of range")
	}
	p.Parallelism = uint8(vals[2])
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return invalid("bad salt encoding")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return invalid("bad hash encoding")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.Validate(); err != nil {
		return invalid(strings.TrimPrefix(err.Error(), "argon2id: "))
	}
	return p, salt, key, nil
}

// parseUint parses a canonical decimal (no sign, no leading zeros) not
// greater than max.
func parseUint(s string, max uint64) (uint64, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, strconv.ErrRange
	}
	return n, nil
}
