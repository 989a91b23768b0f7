package argon2id

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/permiso/permiso"
)

// originalParams are the parameters of the original Python service's
// hashes (argon2-cffi configured with m=65536, t=3, p=1).
var originalParams = Params{Memory: 65536, Time: 3, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := New(Options{Params: TestParams()})
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("unexpected PHC prefix: %s", enc)
	}
	ok, rehash, err := h.Verify(ctx, "correct horse battery staple", enc)
	if err != nil || !ok || rehash {
		t.Fatalf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	ok, _, err = h.Verify(ctx, "correct horse battery stapl", enc)
	if err != nil || ok {
		t.Fatalf("Verify(wrong) = %v, %v; want false, nil", ok, err)
	}
	enc2, _ := h.Hash(ctx, "correct horse battery staple")
	if enc2 == enc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestDefaultParams(t *testing.T) {
	d := DefaultParams()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.Memory < originalParams.Memory || d.Time < originalParams.Time || d == originalParams {
		t.Fatalf("default params %+v must be stronger than the original %+v", d, originalParams)
	}
	h := New(Options{})
	if h.Params() != d {
		t.Fatalf("New(zero).Params() = %+v", h.Params())
	}
	if !h.needsRehash(originalParams) {
		t.Fatal("original parameters must need a rehash under the defaults")
	}
}

// Known answers from the reference C implementation (the library that
// argon2-cffi binds), e.g.
//
//	echo -n 'correct horse battery staple' | argon2 permiso-salt-16b -id -t 3 -m 16 -p 1 -l 32 -e
var referenceVectors = []struct {
	password, hash string
	rehash         bool // under DefaultParams
}{
	{"correct horse battery staple", "$argon2id$v=19$m=65536,t=3,p=1$cGVybWlzby1zYWx0LTE2Yg$y0+QdKdC2hg4tcHCT2TDXJbt0OSd6YxRvJ+BPhTmfiA", true},
	{"Tr0ub4dor&3-original", "$argon2id$v=19$m=65536,t=3,p=1$bGVnYWN5c2FsdDAxMjM0NQ$j/HMHSVazKJZRN1G86kSCpoQ6GqwjkjJ6wHjiXdU3L4", true},
	{"pässwörd ✓", "$argon2id$v=19$m=4096,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$ruZeffPnmF3fsHLeH+xakb1nMMagt+YWlCkJ5jJWF2I", true},
	// The example in argon2-cffi's README (PasswordHasher defaults).
	{"correct horse battery staple", "$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg", true},
}

func TestReferenceVectors(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB hashes")
	}
	ctx := context.Background()
	h := New(Options{})
	for _, v := range referenceVectors {
		ok, rehash, err := h.Verify(ctx, v.password, v.hash)
		if err != nil || !ok || rehash != v.rehash {
			t.Errorf("Verify(%q, %s) = %v, %v, %v; want true, %v, nil", v.password, v.hash, ok, rehash, err, v.rehash)
		}
		ok, _, err = h.Verify(ctx, v.password+"x", v.hash)
		if err != nil || ok {
			t.Errorf("Verify(wrong, %s) = %v, %v", v.hash, ok, err)
		}
	}
}

// TestOriginalServiceHash builds a hash the way argon2-cffi does with the
// original service's parameters and checks that it verifies and is flagged.
func TestOriginalServiceHash(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB hashes")
	}
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("hunter2hunter2"), salt, 3, 65536, 1, 32)
	enc := "$argon2id$v=19$m=65536,t=3,p=1$" +
		base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	h := New(Options{})
	ok, rehash, err := h.Verify(context.Background(), "hunter2hunter2", enc)
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	cur := Params{Memory: 1024, Time: 2, Parallelism: 2, SaltLen: 16, KeyLen: 32}
	h := New(Options{Params: cur})
	tests := []struct {
		name string
		p    Params
		want bool
	}{
		{"same", cur, false},
		{"longer salt", Params{Memory: 1024, Time: 2, Parallelism: 2, SaltLen: 32, KeyLen: 32}, false},
		{"more memory", Params{Memory: 2048, Time: 2, Parallelism: 2, SaltLen: 16, KeyLen: 32}, true},
		{"more passes", Params{Memory: 1024, Time: 3, Parallelism: 2, SaltLen: 16, KeyLen: 32}, true},
		{"more lanes", Params{Memory: 1024, Time: 2, Parallelism: 4, SaltLen: 16, KeyLen: 32}, true},
		{"fewer lanes", Params{Memory: 1024, Time: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}, true},
		{"less memory", Params{Memory: 512, Time: 2, Parallelism: 2, SaltLen: 16, KeyLen: 32}, true},
		{"fewer passes", Params{Memory: 1024, Time: 1, Parallelism: 2, SaltLen: 16, KeyLen: 32}, true},
		{"shorter key", Params{Memory: 1024, Time: 2, Parallelism: 2, SaltLen: 16, KeyLen: 16}, true},
		{"longer key", Params{Memory: 1024, Time: 2, Parallelism: 2, SaltLen: 16, KeyLen: 64}, true},
		{"shorter salt", Params{Memory: 1024, Time: 2, Parallelism: 2, SaltLen: 8, KeyLen: 32}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			salt := make([]byte, tt.p.SaltLen)
			key := argon2.IDKey([]byte("pw"), salt, tt.p.Time, tt.p.Memory, tt.p.Parallelism, tt.p.KeyLen)
			ok, rehash, err := h.Verify(context.Background(), "pw", encode(tt.p, salt, key))
			if err != nil || !ok || rehash != tt.want {
				t.Fatalf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.want)
			}
		})
	}
}

func TestMalformedAndHostileHashes(t *testing.T) {
	salt := "c2FsdHNhbHRzYWx0c2FsdA"                     // 16 bytes
	key := "ruZeffPnmF3fsHLeH+xakb1nMMagt+YWlCkJ5jJWF2I" // 32 bytes
	bad := []string{
		"",
		"$",
		"plaintext-password",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
		"argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$2b$12$abcdefghijklmnopqrstuuQvN2ZpcnVzZXJzYWx0c2FsdA1234567",
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$m=64,t=1,p=1$" + salt + "$" + key + "$x",
		"$argon2id$v=019$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1,data=eA$" + salt + "$" + key,
		"$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key,          // below 8 KiB per lane
		"$argon2id$v=19$m=64,t=1,p=9$" + salt + "$" + key,         // below 8 KiB per lane
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key, // 4 TiB
		"$argon2id$v=19$m=1048577,t=1,p=1$" + salt + "$" + key,    // 1 GiB + 1 KiB
		"$argon2id$v=19$m=1048576,t=1,p=1$" + salt + "$" + key,    // 1 GiB: above MaxStoredMemory
		"$argon2id$v=19$m=99999999999999999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=21,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=4294967295,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4096,t=1,p=17$" + salt + "$" + key,
		"$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,       // empty salt
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key, // 4-byte salt
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", // empty hash
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "==",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "!",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 600),
	}
	h := New(Options{Params: TestParams()})
	// A 12-byte hash is too short; a 16-byte one (the old argon2-cffi
	// default) is well formed and simply does not match.
	bad = append(bad, "$argon2id$v=19$m=64,t=1,p=1$"+salt+"$cnVaZWZmUG5tRjNm")
	if ok, _, err := h.Verify(context.Background(), "pw", "$argon2id$v=19$m=64,t=1,p=1$"+salt+"$cnVaZWZmUG5tRjNmc0hMZQ"); err != nil || ok {
		t.Errorf("16-byte hash: Verify = %v, %v; want false, nil", ok, err)
	}
	if err := h.Check("$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key); err != nil {
		t.Errorf("Check of a well-formed hash: %v", err)
	}
	for _, enc := range bad {
		// Check refuses, without hashing, what Verify refuses.
		if err := h.Check(enc); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("Check(%q) = %v, want ErrInvalidHash", enc, err)
		}
		ok, rehash, err := h.Verify(context.Background(), "pw", enc)
		if err == nil || ok || rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want an error", enc, ok, rehash, err)
			continue
		}
		if !errors.Is(err, ErrInvalidHash) {
			t.Errorf("Verify(%q) error %v does not wrap ErrInvalidHash", enc, err)
		}
		if permiso.ErrorCode(err) != permiso.EINTERNAL {
			t.Errorf("Verify(%q) error code %q, want internal", enc, permiso.ErrorCode(err))
		}
	}
}

func TestDummy(t *testing.T) {
	ctx := context.Background()
	h := New(Options{Params: TestParams()})
	d := h.DummyHash()
	if !strings.HasPrefix(d, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("DummyHash = %s", d)
	}
	ok, _, err := h.Verify(ctx, "", d)
	if err != nil || ok {
		t.Fatalf("Verify(dummy) = %v, %v", ok, err)
	}
	if err := h.VerifyDummy(ctx, "anything"); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	h.derive = func(p, s []byte, ti, m uint32, th uint8, k uint32) []byte {
		calls.Add(1)
		if ti != 1 || m != 64 || th != 1 || k != 32 {
			t.Errorf("dummy derive used params t=%d m=%d p=%d k=%d", ti, m, th, k)
		}
		return argon2.IDKey(p, s, ti, m, th, k)
	}
	_ = h.VerifyDummy(ctx, "anything")
	if calls.Load() != 1 {
		t.Fatalf("VerifyDummy derived %d keys, want 1", calls.Load())
	}
}

// slowDerive counts concurrent derivations and records the maximum.
type slowDerive struct {
	cur, max atomic.Int32
	hold     time.Duration
}

func (s *slowDerive) derive(p, salt []byte, ti, m uint32, th uint8, k uint32) []byte {
	n := s.cur.Add(1)
	for {
		old := s.max.Load()
		if n <= old || s.max.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(s.hold)
	s.cur.Add(-1)
	return argon2.IDKey(p, salt, ti, m, th, k)
}

func TestConcurrencyIsBounded(t *testing.T) {
	h := New(Options{Params: TestParams(), Concurrency: 2, MaxWait: 10 * time.Second})
	sd := &slowDerive{hold: 20 * time.Millisecond}
	h.derive = sd.derive
	enc, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if _, err := h.Hash(context.Background(), "pw"); err != nil {
					t.Error(err)
				}
				return
			}
			if ok, _, err := h.Verify(context.Background(), "pw", enc); err != nil || !ok {
				t.Error(ok, err)
			}
		}()
	}
	wg.Wait()
	if got := sd.max.Load(); got != 2 {
		t.Fatalf("max concurrent derivations = %d, want 2", got)
	}
}

func TestBusyTimesOut(t *testing.T) {
	h := New(Options{Params: TestParams(), Concurrency: 1, MaxWait: 30 * time.Millisecond})
	release := make(chan struct{})
	started := make(chan struct{})
	h.derive = func(p, s []byte, ti, m uint32, th uint8, k uint32) []byte {
		close(started)
		<-release
		return argon2.IDKey(p, s, ti, m, th, k)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = h.Hash(context.Background(), "pw")
	}()
	<-started

	start := time.Now()
	_, err := h.Hash(context.Background(), "pw")
	if permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Hash while busy: err = %v, want EUNAVAILABLE", err)
	}
	if msg := permiso.ErrorMessage(err); msg != "too many concurrent password checks; retry shortly" {
		t.Fatalf("message = %q", msg)
	}
	if d := time.Since(start); d < 25*time.Millisecond {
		t.Fatalf("gave up after %v, before MaxWait", d)
	}
	_, _, err = h.Verify(context.Background(), "pw", h.DummyHash())
	if !errors.Is(err, permiso.ErrUnavailable) {
		t.Fatalf("Verify while busy: err = %v", err)
	}
	if err := h.VerifyDummy(context.Background(), "pw"); !errors.Is(err, permiso.ErrUnavailable) {
		t.Fatalf("VerifyDummy while busy: err = %v", err)
	}

	// A cancelled context stops the wait at once.
	ctx, cancel := context.WithCancel(context.Background())
	h.maxWait = time.Hour
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	_, err = h.Hash(ctx, "pw")
	if !errors.Is(err, context.Canceled) || permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("Hash with cancelled ctx: err = %v", err)
	}

	close(release)
	<-done
	// The slot is free again.
	h.derive = argon2.IDKey
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
}

func TestNoWait(t *testing.T) {
	h := New(Options{Params: TestParams(), Concurrency: 1, MaxWait: -1})
	h.slots <- struct{}{} // occupy the only slot
	if _, err := h.Hash(context.Background(), "pw"); permiso.ErrorCode(err) != permiso.EUNAVAILABLE {
		t.Fatalf("err = %v", err)
	}
}

func TestNewPanicsOnInvalidParams(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted Time=0")
		}
	}()
	New(Options{Params: Params{Memory: 64, Time: 0, Parallelism: 1, SaltLen: 16, KeyLen: 32}})
}

func FuzzVerify(f *testing.F) {
	for _, v := range referenceVectors {
		f.Add(v.hash)
	}
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$ruZeffPnmF3fsHLeH+xakb1nMMagt+YWlCkJ5jJWF2I")
	f.Add("$argon2id$v=19$m=64,t=1,p=8$c2FsdHNhbHRzYWx0c2FsdA$ruZeffPnmF3fsHLeH+xakb1nMMagt+YWlCkJ5jJWF2I")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$$")
	f.Add("")
	h := New(Options{Params: TestParams()})
	f.Fuzz(func(t *testing.T, enc string) {
		p, _, _, err := decode(enc)
		if err != nil {
			ok, rehash, verr := h.Verify(context.Background(), "pw", enc)
			if verr == nil || ok || rehash {
				t.Fatalf("decode failed (%v) but Verify = %v, %v, %v", err, ok, rehash, verr)
			}
			return
		}
		// Only run the KDF on cheap parameters; the bounds themselves are
		// covered by decode's own checks.
		if p.Memory > 4096 || p.Time > 2 {
			if p.Memory > MaxMemoryKiB || p.Time > MaxTime || p.Parallelism > MaxParallelism {
				t.Fatalf("decode accepted out-of-bounds params %+v", p)
			}
			return
		}
		ok, _, err := h.Verify(context.Background(), "pw", enc)
		if err != nil {
			t.Fatalf("decodable hash failed Verify: %v", err)
		}
		_ = ok
	})
}
