package jwt

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
)

// rsaKeyBits is the size of generated RS256 keys: RFC 7518 §3.3 requires at
// least 2048 bits; 3072 bits give 128-bit security (NIST SP 800-57).
const rsaKeyBits = 3072

// minRSAKeyBits is the smallest RSA key accepted from the store
// (RFC 7518 §3.3).
const minRSAKeyBits = 2048

var errNoSigningKey = errors.New("jwt: no unretired signing key")

// key is one key of a signer's key set. It is immutable once built.
type key struct {
	kid string
	alg string
	// signing is the key for the signing method (gojwt.SigningMethod.Sign): []byte (HS*),
	// *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey; nil for
	// keys that only verify.
	signing any
	// verifying is []byte (HS*), *rsa.PublicKey, *ecdsa.PublicKey or
	// ed25519.PublicKey.
	verifying any
	// jwk is the published public key; nil for HS*.
	jwk       *jsonWebKey
	createdAt time.Time
	// expiresAt ends verification; nil for keys that do not expire.
	expiresAt *time.Time
}

// live reports whether k still verifies at now.
func (k *key) live(now time.Time) bool {
	return k.expiresAt == nil || now.Before(*k.expiresAt)
}

// keySet is a signer's keys: the current signing key first, then the
// others, newest first.
type keySet struct {
	current *key
	keys    []*key
	byKID   map[string]*key
	// header is the encoded JWS header of an access token signed with
	// current (accessHeader), computed once per key set rather than per
	// token.
	header string
	// macs holds HMACs keyed with current's secret (HS*; nil for the
	// asymmetric algorithms), which Sign resets and reuses: hmac.New
	// allocates its two hashes and hashes the padded key on every call,
	// where a reset HMAC starts from the keyed state it saved.
	macs *sync.Pool
}

func newKeySet(current *key, others []*key) *keySet {
	set := &keySet{current: current, keys: []*key{current}, byKID: map[string]*key{current.kid: current},
		header: accessHeader(current)}
	if secret, ok := current.signing.([]byte); ok {
		if m, ok := gojwt.GetSigningMethod(current.alg).(*gojwt.SigningMethodHMAC); ok {
			set.macs = &sync.Pool{New: func() any { return hmac.New(m.Hash.New, secret) }}
		}
	}
	for _, k := range others {
		if _, dup := set.byKID[k.kid]; dup {
			continue
		}
		set.keys = append(set.keys, k)
		set.byKID[k.kid] = k
	}
	return set
}

// keySet returns the current key set.
func (s *Signer) keySet() *keySet {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys
}

// lookup returns the live key with this kid, or nil.
func (s *Signer) lookup(kid string) *key { return s.lookupAt(kid, s.now()) }

// lookupAt is lookup at now, for a caller that has read the clock already.
func (s *Signer) lookupAt(kid string, now time.Time) *key {
	k := s.keySet().byKID[kid]
	if k == nil || !k.live(now) {
		return nil
	}
	return k
}

// hmacKID is the kid of an HMAC secret: base64url of the first 8 bytes of
// its SHA-256 digest. It tells secrets apart without revealing them.
func hmacKID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// hmacKeySet builds the key set of an HS* signer: the secret signs and
// verifies, the next and previous secrets only verify. Each secret is
// found by its kid (hmacKID), so which of them signed a token costs no
// trial verifications.
func hmacKeySet(alg string, secret []byte, next, previous [][]byte) (*keySet, error) {
	if len(secret) < MinHMACSecretLength {
		return nil, fmt.Errorf("jwt: %s secret must be at least %d bytes", alg, MinHMACSecretLength)
	}
	secret = slices.Clone(secret)
	current := &key{kid: hmacKID(secret), alg: alg, signing: secret, verifying: secret}
	others := make([]*key, 0, len(next)+len(previous))
	for _, l := range []struct {
		what    string
		secrets [][]byte
	}{{"next", next}, {"previous", previous}} {
		for i, p := range l.secrets {
			if len(p) == 0 {
				return nil, fmt.Errorf("jwt: %s secret %d is empty", l.what, i+1)
			}
			p = slices.Clone(p)
			others = append(others, &key{kid: hmacKID(p), alg: alg, verifying: p})
		}
	}
	return newKeySet(current, others), nil
}

// Reload re-reads the signer's keys from the key store: keys another
// instance created or retired, and drops expired ones. On error the
// previous key set stays in use. It does nothing for HS*.
func (s *Signer) Reload(ctx context.Context) error {
	if s.isHMAC() {
		return nil
	}
	set, err := s.load(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys = set
	s.mu.Unlock()
	return nil
}

// Run reloads the keys every interval (Options.ReloadInterval when every
// is not positive) until ctx ends. Failures are logged and the previous
// keys kept. It returns at once for HS*.
func (s *Signer) Run(ctx context.Context, every time.Duration) {
	if s.isHMAC() {
		return
	}
	if every <= 0 {
		every = s.reloadInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "jwt: reloading signing keys failed", "error", err)
			}
		}
	}
}

// Rotate generates and stores a new signing key, retires every other
// unretired key of the algorithm and reloads. A retired key keeps verifying
// and stays in the JWK Set until now + MaxTokenLifetime + Leeway +
// ReloadInterval: the last token it can have signed, on this or on an
// instance that has not reloaded yet, has expired by then. Rotate returns
// the new kid.
//
// HS* secrets come from the configuration and are not rotated here.
func (s *Signer) Rotate(ctx context.Context) (newKID string, err error) {
	if s.isHMAC() {
		return "", permiso.Errorf(permiso.EINVALID,
			"%s keys are not rotated by permiso: put the new secret in JWT_NEXT_SECRET_KEYS on every instance and restart them, then make it JWT_SECRET_KEY with the old one in JWT_PREVIOUS_SECRET_KEYS (until its last token has expired) and restart them again (docs/deployment.md)", s.alg)
	}
	k, err := s.createKey(ctx)
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	expires := now.Add(s.maxLifetime + s.leeway + s.reloadInterval)
	if _, err := s.store.RetireSigningKeys(ctx, s.alg, k.ID, now, expires); err != nil {
		return "", fmt.Errorf("jwt: retire signing keys: %w", err)
	}
	if err := s.Reload(ctx); err != nil {
		return "", err
	}
	return k.ID, nil
}

// createKey generates a key of the signer's algorithm and stores it.
func (s *Signer) createKey(ctx context.Context) (permiso.SigningKey, error) {
	k, err := generateKey(s.alg, s.now())
	if err != nil {
		return permiso.SigningKey{}, err
	}
	stored, err := s.store.CreateSigningKey(ctx, k)
	if err != nil {
		return permiso.SigningKey{}, fmt.Errorf("jwt: store signing key: %w", err)
	}
	return stored, nil
}

// generateKey returns a new key of alg whose ID is its RFC 7638 thumbprint.
func generateKey(alg string, now time.Time) (permiso.SigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaKeyBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("no key generation for %s", alg)
	}
	if err != nil {
		return permiso.SigningKey{}, fmt.Errorf("jwt: generate %s key: %w", alg, err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return permiso.SigningKey{}, fmt.Errorf("jwt: encode private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return permiso.SigningKey{}, fmt.Errorf("jwt: encode public key: %w", err)
	}
	jwk, err := publicJWK(alg, "", priv.Public())
	if err != nil {
		return permiso.SigningKey{}, err
	}
	return permiso.SigningKey{
		ID:         jwk.thumbprint(),
		Algorithm:  alg,
		PrivateKey: privDER,
		PublicKey:  pubDER,
		CreatedAt:  now.UTC(),
	}, nil
}

// load reads the live keys of the signer's algorithm from the store. The
// newest unretired key signs; it is errNoSigningKey when there is none.
// Keys of other algorithms are ignored: the algorithm is pinned.
func (s *Signer) load(ctx context.Context) (*keySet, error) {
	now := s.now()
	stored, err := s.store.ListSigningKeys(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("jwt: list signing keys: %w", err)
	}
	stored = slices.DeleteFunc(slices.Clone(stored), func(k permiso.SigningKey) bool {
		return k.Algorithm != s.alg || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt))
	})
	// Newest first; the ID breaks ties so that every instance picks the
	// same signing key.
	slices.SortStableFunc(stored, func(a, b permiso.SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	i := slices.IndexFunc(stored, func(k permiso.SigningKey) bool { return k.RetiredAt == nil })
	if i < 0 {
		return nil, errNoSigningKey
	}
	current, err := parseStoredKey(stored[i], true)
	if err != nil {
		return nil, err
	}
	others := make([]*key, 0, len(stored)-1)
	for j, sk := range stored {
		if j == i {
			continue
		}
		k, err := parseStoredKey(sk, false)
		if err != nil {
			return nil, err
		}
		others = append(others, k)
	}
	return newKeySet(current, others), nil
}

// parseStoredKey decodes a stored key, checking that its type fits its
// algorithm and, with withPrivate, that its private key matches its public
// key.
func parseStoredKey(sk permiso.SigningKey, withPrivate bool) (*key, error) {
	if sk.ID == "" {
		return nil, errors.New("jwt: signing key without ID")
	}
	pub, err := x509.ParsePKIXPublicKey(sk.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("jwt: signing key %s: public key: %w", sk.ID, err)
	}
	jwk, err := publicJWK(sk.Algorithm, sk.ID, pub)
	if err != nil {
		return nil, fmt.Errorf("jwt: signing key %s: %w", sk.ID, err)
	}
	k := &key{kid: sk.ID, alg: sk.Algorithm, verifying: pub, jwk: jwk, createdAt: sk.CreatedAt, expiresAt: sk.ExpiresAt}
	if !withPrivate {
		return k, nil
	}
	priv, err := x509.ParsePKCS8PrivateKey(sk.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("jwt: signing key %s: private key: %w", sk.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("jwt: signing key %s: private key cannot sign", sk.ID)
	}
	if p, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(pub) {
		return nil, fmt.Errorf("jwt: signing key %s: private and public keys do not match", sk.ID)
	}
	k.signing = priv
	return k, nil
}

// jsonWebKey is a public JWK (RFC 7517 §4) of an RSA (RFC 7518 §6.3.1),
// EC (RFC 7518 §6.2.1) or OKP (RFC 8037 §2) key.
type jsonWebKey struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Crv string `json:"crv,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// jsonWebKeySet is a JWK Set (RFC 7517 §5).
type jsonWebKeySet struct {
	Keys []jsonWebKey `json:"keys"`
}

// publicJWK returns the JWK of pub for alg, checking that the key type and
// size fit the algorithm.
func publicJWK(alg, kid string, pub crypto.PublicKey) (*jsonWebKey, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	j := &jsonWebKey{Use: "sig", Kid: kid, Alg: alg}
	switch alg {
	case RS256:
		p, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an RSA key, not %T", alg, pub)
		}
		if p.N.BitLen() < minRSAKeyBits {
			return nil, fmt.Errorf("RSA key of %d bits is below %d", p.N.BitLen(), minRSAKeyBits)
		}
		j.Kty, j.N, j.E = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	case ES256:
		p, ok := pub.(*ecdsa.PublicKey)
		if !ok || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s needs a P-256 key, not %T", alg, pub)
		}
		// RFC 7518 §6.2.1.2: x and y are full-length (32-byte) octets.
		pt, err := p.Bytes()
		if err != nil {
			return nil, err
		}
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(pt[1:33]), b64(pt[33:65])
	case EdDSA:
		p, ok := pub.(ed25519.PublicKey)
		if !ok || len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%s needs an Ed25519 key, not %T", alg, pub)
		}
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(p)
	default:
		return nil, fmt.Errorf("no public key for %s", alg)
	}
	return j, nil
}

// thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of
// the key: the digest of its required members in lexicographic order
// (RFC 7638 §3.2; RFC 8037 §2 for OKP).
func (j *jsonWebKey) thumbprint() string {
	var members any
	switch j.Kty {
	case "RSA":
		members = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N}
	case "EC":
		members = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{j.Crv, j.Kty, j.X, j.Y}
	default:
		members = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{j.Crv, j.Kty, j.X}
	}
	b, _ := json.Marshal(members) // base64url strings need no escaping
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// JWKS returns the JSON JWK Set (RFC 7517 §5) of the public keys that
// currently verify: the signing key first, then retired keys until their
// expiry, newest first. It is {"keys":[]} for HS*, whose keys are secret.
func (s *Signer) JWKS() []byte {
	now := s.now()
	set := jsonWebKeySet{Keys: []jsonWebKey{}}
	for _, k := range s.keySet().keys {
		if k.jwk != nil && k.live(now) {
			set.Keys = append(set.Keys, *k.jwk)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic("jwt: marshal JWKS: " + err.Error()) // plain strings cannot fail
	}
	return b
}
