package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnsureDevSecret gives a development server a JWT_SECRET_KEY that survives
// restarts. When c is not production and c.JWTSecretKey is empty, it reads
// a 64-hex-digit key from the file at path (see Config.DevSecretPath), or
// generates a 256-bit key with crypto/rand and writes it there with mode
// 0600, and sets c.JWTSecretKey to it (the hex text is the key). It then
// returns the warning "JWT_SECRET_KEY not set; using a generated
// development key stored in <path>". Otherwise it does nothing and returns
// "", nil.
//
// A file holding anything else is an error (it is not overwritten).
// Concurrent first starts agree on one key: the file is created atomically
// and whoever loses the race reads the winner's key.
func EnsureDevSecret(c *Config, path string) (warning string, err error) {
	if c.IsProduction() || c.JWTSecretKey != "" {
		return "", nil
	}
	key, warning, err := devKey(path, "development key", "JWT_SECRET_KEY")
	if err != nil {
		return "", err
	}
	c.JWTSecretKey = key
	return warning, nil
}

// EnsureDevMFAKey does for MFA_ENCRYPTION_KEY what EnsureDevSecret does
// for JWT_SECRET_KEY: outside production, when c.MFAEncryptionKey is
// empty, it reads or creates a 64-hex-digit key at path (see
// Config.DevMFAKeyPath), sets c.MFAEncryptionKey to the 32 bytes it
// encodes and returns a warning naming the file.
func EnsureDevMFAKey(c *Config, path string) (warning string, err error) {
	if c.IsProduction() || len(c.MFAEncryptionKey) != 0 {
		return "", nil
	}
	key, warning, err := devKey(path, "development MFA key", "MFA_ENCRYPTION_KEY")
	if err != nil {
		return "", err
	}
	raw, err := hex.DecodeString(key)
	if err != nil {
		return "", err
	}
	c.MFAEncryptionKey = raw
	return warning, nil
}

// devKey reads the development key stored at path, or creates it there,
// and returns it with the warning that setting is not set and the file
// is used (what names the key in the error of an empty path).
func devKey(path, what, setting string) (key, warning string, err error) {
	if path == "" {
		return "", "", errors.New(what + ": no file path given")
	}
	key, err = readDevSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createDevSecret(path)
	}
	if err != nil {
		return "", "", err
	}
	warning = setting + " not set; using a generated development key stored in " + path
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		warning += fmt.Sprintf(" (warning: the file is readable by others, mode %v; chmod 600 it)", fi.Mode().Perm())
	}
	return key, warning, nil
}

// readDevSecret reads and checks a stored development key.
func readDevSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	if len(key) != 64 {
		return "", fmt.Errorf("development key file %s does not hold a 64-hex-digit key; delete it to generate a new one", path)
	}
	if _, err := hex.DecodeString(key); err != nil {
		return "", fmt.Errorf("development key file %s does not hold a 64-hex-digit key; delete it to generate a new one", path)
	}
	return key, nil
}

// createDevSecret writes a new key to path unless another process got
// there first, in which case it returns that process's key.
func createDevSecret(path string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	key := hex.EncodeToString(raw[:])
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	// Write a complete temporary file, then link it into place: the link
	// fails if path exists, and a reader never sees a half-written key.
	tmp, err := os.CreateTemp(dir, ".permiso-dev-secret-*")
	if err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("development key: %w", err)
	}
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("development key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("development key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, fs.ErrExist):
		return readDevSecret(path)
	}
	// File systems without hard links: fall back to an exclusive create.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readDevSecret(path)
	}
	if err != nil {
		return "", fmt.Errorf("development key: %w", err)
	}
	_, werr := f.WriteString(key + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", fmt.Errorf("development key: %w", werr)
	}
	return key, nil
}
