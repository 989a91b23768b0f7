package jwt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/permiso/permiso"
)

// Supported values of [Options.Algorithm] (RFC 7518 §3.1, RFC 8037 §3.1).
const (
	HS256 = "HS256"
	HS384 = "HS384"
	HS512 = "HS512"
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// HeaderType is the JWS "typ" header of every access token (RFC 9068 §2.1).
// Verification also accepts its full media type "application/at+jwt", in
// any letter case (RFC 7515 §4.1.9).
const HeaderType = "at+jwt"

// Defaults and limits of [Options].
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat when
	// Options.Leeway is zero (RFC 7519 §4.1.4 "some small leeway").
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest accepted Options.Leeway.
	MaxLeeway = time.Minute
	// DefaultReloadInterval is Options.ReloadInterval when it is zero.
	DefaultReloadInterval = time.Minute
	// MinHMACSecretLength is the shortest accepted current HS* secret, in
	// bytes (JWT_SECRET_KEY has at least 32 bytes, README).
	MinHMACSecretLength = 32
	// maxTokenLength bounds the input of Verify so that garbage cannot make
	// it decode megabytes.
	maxTokenLength = 16 << 10
	// missReloadInterval is how often at most a token with an unknown kid
	// makes Verify re-read the key store, so that garbage kids cannot
	// hammer the database.
	missReloadInterval = 3 * time.Second
)

// Options configure a [Signer].
type Options struct {
	// Algorithm is the one JWS algorithm used to sign and accepted when
	// verifying: HS256, HS384, HS512, RS256, ES256 or EdDSA (JWT_ALGORITHM).
	Algorithm string
	// Secret is the HMAC key for HS* (JWT_SECRET_KEY), used as given, at
	// least MinHMACSecretLength bytes. Ignored for asymmetric algorithms.
	Secret []byte
	// PreviousSecrets still verify HS* tokens but never sign
	// (JWT_PREVIOUS_SECRET_KEYS). Ignored for asymmetric algorithms.
	PreviousSecrets [][]byte
	// NextSecrets already verify HS* tokens but do not sign yet
	// (JWT_NEXT_SECRET_KEYS): during a rolling rotation every instance
	// first accepts the new secret, then signs with it, so a token from
	// an instance that already signs with it is never refused by one that
	// does not yet. Ignored for asymmetric algorithms.
	NextSecrets [][]byte
	// Issuer is the "iss" of every token and the only one accepted
	// (JWT_ISSUER). Required.
	Issuer string
	// Audience is the "aud" of issued tokens; a token is accepted when its
	// aud contains any of these (RFC 7519 §4.1.3). Defaults to [Issuer].
	Audience []string
	// Keys keeps the asymmetric signing keys (RS256, ES256, EdDSA); required
	// for them, ignored for HS*.
	Keys permiso.KeyStore
	// MaxTokenLifetime is the longest access-token lifetime, service tokens
	// included. A retired key keeps verifying that long (plus Leeway and
	// ReloadInterval), and Sign refuses longer-lived tokens. Required for
	// asymmetric algorithms; optional for HS*.
	MaxTokenLifetime time.Duration
	// ReloadInterval is how often every instance re-reads the key store
	// (the default period of Run). Another instance may keep signing with a
	// retired key until its next reload, so Rotate adds this interval to
	// the retired keys' lifetime. Default DefaultReloadInterval.
	ReloadInterval time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway, a negative value none; at most MaxLeeway.
	Leeway time.Duration
	// Now returns the current time; time.Now when nil (tests set it).
	Now func() time.Time
	// Logger receives reload failures; none when nil.
	Logger *slog.Logger
	// VerifiedCacheSize bounds the cache of verified tokens
	// (docs/security-model.md, "The cache of verified tokens"): how many
	// accepted tokens Verify remembers, so that a token presented again
	// skips the parse and the signature check, never the checks of its
	// times, issuer, audience and key. Zero means
	// DefaultVerifiedCacheSize, a negative value no cache.
	VerifiedCacheSize int
}

// Signer signs and verifies access tokens with a pinned algorithm and its
// own key set. It implements [permiso.TokenSigner] and is safe for
// concurrent use.
type Signer struct {
	alg            string
	method         gojwt.SigningMethod
	issuer         string
	audience       []string
	store          permiso.KeyStore
	maxLifetime    time.Duration
	reloadInterval time.Duration
	leeway         time.Duration
	now            func() time.Time
	log            *slog.Logger
	parser         *gojwt.Parser
	validator      *gojwt.Validator // the parser's claim checks, for cache hits
	verified       *verifiedCache   // nil when Options.VerifiedCacheSize < 0

	mu   sync.RWMutex
	keys *keySet

	missMu   sync.Mutex
	lastMiss time.Time
}

var _ permiso.TokenSigner = (*Signer)(nil)

// New returns a Signer for opts. For an asymmetric algorithm it loads the
// keys of that algorithm from opts.Keys and, when none of them is
// unretired, generates one (RSA 3072, P-256 or Ed25519), stores it and
// signs with it.
func New(ctx context.Context, opts Options) (*Signer, error) {
	s := &Signer{
		alg:            opts.Algorithm,
		issuer:         opts.Issuer,
		audience:       slices.Clone(opts.Audience),
		store:          opts.Keys,
		maxLifetime:    opts.MaxTokenLifetime,
		reloadInterval: opts.ReloadInterval,
		leeway:         opts.Leeway,
		now:            opts.Now,
		log:            opts.Logger,
	}
	switch s.alg {
	case HS256, HS384, HS512, RS256, ES256, EdDSA:
	default:
		return nil, fmt.Errorf("jwt: unsupported algorithm %q (want HS256, HS384, HS512, RS256, ES256 or EdDSA)", s.alg)
	}
	s.method = gojwt.GetSigningMethod(s.alg)
	if s.method == nil {
		return nil, fmt.Errorf("jwt: algorithm %s is not registered", s.alg)
	}
	if s.issuer == "" {
		return nil, errors.New("jwt: an issuer is required")
	}
	if len(s.audience) == 0 {
		s.audience = []string{s.issuer}
	}
	if slices.Contains(s.audience, "") {
		return nil, errors.New("jwt: empty audience value")
	}
	switch {
	case s.leeway == 0:
		s.leeway = DefaultLeeway
	case s.leeway < 0:
		s.leeway = 0
	case s.leeway > MaxLeeway:
		return nil, fmt.Errorf("jwt: leeway %s is above the maximum %s", s.leeway, MaxLeeway)
	}
	if s.reloadInterval <= 0 {
		s.reloadInterval = DefaultReloadInterval
	}
	if s.maxLifetime < 0 {
		return nil, errors.New("jwt: negative maximum token lifetime")
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// RFC 8725 §3.1: accept exactly the one configured algorithm.
	parserOptions := []gojwt.ParserOption{
		gojwt.WithValidMethods([]string{s.alg}),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		gojwt.WithIssuer(s.issuer),
		gojwt.WithAudience(s.audience...),
		gojwt.WithLeeway(s.leeway),
		gojwt.WithTimeFunc(func() time.Time { return s.now() }),
		gojwt.WithStrictDecoding(),
	}
	s.parser = gojwt.NewParser(parserOptions...)
	s.validator = gojwt.NewValidator(parserOptions...)
	size := opts.VerifiedCacheSize
	if size == 0 {
		size = DefaultVerifiedCacheSize
	}
	s.verified = newVerifiedCache(size)

	if s.isHMAC() {
		set, err := hmacKeySet(s.alg, opts.Secret, opts.NextSecrets, opts.PreviousSecrets)
		if err != nil {
			return nil, err
		}
		s.keys = set
		return s, nil
	}

	if s.store == nil {
		return nil, fmt.Errorf("jwt: %s needs a key store", s.alg)
	}
	if s.maxLifetime == 0 {
		return nil, fmt.Errorf("jwt: %s needs the maximum token lifetime", s.alg)
	}
	set, err := s.load(ctx)
	if errors.Is(err, errNoSigningKey) {
		if _, err = s.createKey(ctx); err != nil {
			return nil, err
		}
		set, err = s.load(ctx)
	}
	if err != nil {
		return nil, err
	}
	s.keys = set
	return s, nil
}

func (s *Signer) isHMAC() bool { return strings.HasPrefix(s.alg, "HS") }

// Algorithms returns the JWS algorithms the signer uses, for the discovery
// metadata (RFC 8414 §2): the configured one only.
func (s *Signer) Algorithms() []string { return []string{s.alg} }

// Sign implements [permiso.TokenSigner]. It returns the compact JWS of c
// (RFC 7515 §7.1) signed with the current key, with the header "alg", "kid"
// and "typ": "at+jwt" (RFC 9068 §2.1).
//
// An empty Issuer or Audience is filled in with the configured one; a
// different issuer, or an audience outside the configured ones, is an
// error. A zero IssuedAt is now, a zero NotBefore is IssuedAt and an empty
// ID is permiso.NewTokenID(IssuedAt), which keeps the issue time to the
// millisecond. Times are truncated to whole seconds (iat stays an integer). Subject, Type and
// an ExpiresAt after IssuedAt are required, and the lifetime may not exceed
// MaxTokenLifetime when it is set.
func (s *Signer) Sign(ctx context.Context, c permiso.AccessClaims) (string, error) {
	set := s.keySet()
	if err := s.complete(&c); err != nil {
		return "", err
	}
	// The compact serialization (RFC 7515 §7.1) built as gojwt's
	// SignedString builds it, with the header encoded once per key set
	// and the payload by appendJSON (the bytes json.Marshal writes)
	// instead of reflection: what every token request pays.
	payload := newClaims(c).appendJSON(make([]byte, 0, 512))
	enc := base64.RawURLEncoding
	if set.macs != nil {
		return signHMAC(set, payload)
	}
	buf := make([]byte, 0, len(set.header)+1+enc.EncodedLen(len(payload)))
	buf = append(buf, set.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	signing := string(buf)
	sig, err := s.method.Sign(signing, set.current.signing)
	if err != nil {
		return "", fmt.Errorf("jwt: sign: %w", err)
	}
	token := signing + "." + enc.EncodeToString(sig)
	if len(token) > maxTokenLength {
		// Verify would refuse it: issuing it would hand out a token that
		// works nowhere. Every scope is written twice (scope and scopes),
		// so this is a subject with very many long scopes
		// (docs/security-model.md, "Token size").
		return "", errTokenTooLarge
	}
	return token, nil
}

// signHMAC is Sign for the HS* algorithms: the same compact serialization
// and the same MAC as gojwt's SigningMethodHMAC.Sign (HMAC with the
// algorithm's hash over the signing input, TestSignHMACIsGojwt), computed
// with one of the key set's reused HMACs and written into the token's one
// buffer.
func signHMAC(set *keySet, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	mac := set.macs.Get().(hash.Hash)
	buf := make([]byte, 0, len(set.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(mac.Size()))
	buf = append(buf, set.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	mac.Reset()
	mac.Write(buf)
	var sum [64]byte // SHA-512's size, the largest of HS256, HS384 and HS512
	sig := mac.Sum(sum[:0])
	set.macs.Put(mac)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	if len(buf) > maxTokenLength {
		return "", errTokenTooLarge
	}
	return string(buf), nil
}

// errTokenTooLarge is Sign's answer for claims whose token would be longer
// than Verify reads: a caller-safe validation error (an OAuth
// invalid_request, a 422 elsewhere), never an unusable token.
var errTokenTooLarge = permiso.Errorf(permiso.EINVALID,
	"The token would be longer than %d bytes: too many or too long scopes; request fewer scopes or grant fewer to the subject", maxTokenLength)

// accessHeader is the encoded JWS header of an access token signed with
// k: "alg", "kid" and "typ": "at+jwt" (RFC 9068 §2.1), as gojwt encodes
// its header map (json.Marshal, keys sorted).
func accessHeader(k *key) string {
	h, err := json.Marshal(map[string]string{"alg": k.alg, "kid": k.kid, "typ": HeaderType})
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return base64.RawURLEncoding.EncodeToString(h)
}

// complete fills in the defaults of c and checks it (see Sign).
func (s *Signer) complete(c *permiso.AccessClaims) error {
	switch {
	case c.Issuer == "":
		c.Issuer = s.issuer
	case c.Issuer != s.issuer:
		return fmt.Errorf("jwt: sign: issuer %q is not the configured issuer", c.Issuer)
	}
	if len(c.Audience) == 0 {
		c.Audience = s.audience
	}
	for _, a := range c.Audience {
		if !slices.Contains(s.audience, a) {
			return fmt.Errorf("jwt: sign: audience %q is not a configured audience", a)
		}
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = s.now()
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = c.IssuedAt
	}
	if c.ID == "" {
		c.ID = permiso.NewTokenID(c.IssuedAt)
	}
	iat, exp := c.IssuedAt.Truncate(time.Second), c.ExpiresAt.Truncate(time.Second)
	switch {
	case c.Subject == "":
		return errors.New("jwt: sign: subject is required")
	case c.Type != permiso.TokenTypeAccess && c.Type != permiso.TokenTypeService:
		return fmt.Errorf("jwt: sign: token type %q is not access or service", c.Type)
	case c.ExpiresAt.IsZero() || !exp.After(iat):
		return errors.New("jwt: sign: expiry must be after the issue time")
	case s.maxLifetime > 0 && exp.Sub(iat) > s.maxLifetime:
		return fmt.Errorf("jwt: sign: lifetime %s exceeds the maximum %s", exp.Sub(iat), s.maxLifetime)
	}
	for _, sc := range c.Scopes {
		if !validScopeToken(sc) {
			return fmt.Errorf("jwt: sign: invalid scope %q", sc)
		}
	}
	return nil
}

// validScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E ), so that the space-separated "scope"
// claim splits back into the same list.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Verify implements [permiso.TokenSigner]. It accepts a compact JWS only
// when (RFC 8725 §3, RFC 9068 §4):
//   - its alg is the configured algorithm, and its kid names a current key
//     of the signer's own key set whose type matches the algorithm;
//   - typ is "at+jwt" or "application/at+jwt" and there is no "crit";
//   - the signature verifies;
//   - exp, iat, jti and sub are present, exp is not past, nbf and iat are
//     not in the future (each with the leeway), iss is the issuer, aud
//     contains one of the audiences, and type is "access" or "service".
//
// An unknown kid makes it re-read the key store first (another instance
// may have rotated), at most once every few seconds. Every failure is an
// EINVALIDTOKEN *permiso.Error with the message "Token has expired" or
// "Invalid token", wrapping the reason for logs.
//
// A token accepted before is found in the cache of verified tokens
// (verifiedHit), which skips its parse and signature check but makes every
// other check above again; a token not found there, or found but failing
// one of them, is verified from scratch (docs/security-model.md, "The
// cache of verified tokens").
func (s *Signer) Verify(ctx context.Context, token string) (permiso.AccessClaims, error) {
	if len(token) > maxTokenLength {
		return permiso.AccessClaims{}, invalid(errors.New("token too long"))
	}
	if c, ok := s.verifiedHit(token); ok {
		return c, nil
	}
	var c claims
	var used *key
	_, err := s.parser.ParseWithClaims(token, &c, func(t *gojwt.Token) (any, error) {
		k, err := s.verificationKey(ctx, t)
		if err != nil {
			return nil, err
		}
		used = k
		return k.verifying, nil
	})
	if err != nil {
		if errors.Is(err, gojwt.ErrTokenExpired) {
			return permiso.AccessClaims{}, permiso.Wrap(permiso.EINVALIDTOKEN, "Token has expired", err)
		}
		return permiso.AccessClaims{}, invalid(err)
	}
	access := c.accessClaims()
	s.remember(token, &c, access, used)
	return access, nil
}

func invalid(cause error) error {
	return permiso.Wrap(permiso.EINVALIDTOKEN, "Invalid token", cause)
}

// verificationKey is the key function of Verify: it checks the header and
// returns the key named by kid, from our own keys only (RFC 8725 §3.10).
func (s *Signer) verificationKey(ctx context.Context, t *gojwt.Token) (*key, error) {
	// RFC 9068 §4 and RFC 8725 §3.11: explicit typing.
	typ, _ := t.Header["typ"].(string)
	if !strings.EqualFold(typ, HeaderType) && !strings.EqualFold(typ, "application/"+HeaderType) {
		return nil, errors.New("typ header is not at+jwt")
	}
	// RFC 7515 §4.1.11: no extension is understood, so crit must be absent.
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("crit header not supported")
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("kid header missing")
	}
	k := s.lookup(kid)
	if k == nil && !s.isHMAC() {
		s.reloadOnMiss(ctx)
		k = s.lookup(kid)
	}
	if k == nil {
		return nil, errors.New("unknown kid")
	}
	// The parser already pinned the algorithm; the key must be of that
	// algorithm too (RFC 8725 §2.1), so a key can never be used with
	// another algorithm than its own.
	if t.Method == nil || t.Method.Alg() != k.alg || k.alg != s.alg {
		return nil, errors.New("key algorithm mismatch")
	}
	return k, nil
}

// reloadOnMiss re-reads the key store unless that was done less than
// missReloadInterval ago. Concurrent callers wait for one reload.
func (s *Signer) reloadOnMiss(ctx context.Context) {
	s.missMu.Lock()
	defer s.missMu.Unlock()
	now := s.now()
	if !s.lastMiss.IsZero() && now.Sub(s.lastMiss) < missReloadInterval && !now.Before(s.lastMiss) {
		return
	}
	s.lastMiss = now
	if err := s.Reload(ctx); err != nil {
		s.log.WarnContext(ctx, "jwt: reloading signing keys for an unknown kid failed", "error", err)
	}
}
