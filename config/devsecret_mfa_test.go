package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnsureDevMFAKey: a development server gets a generated 32-byte key
// that survives a restart; production and a configured key are left alone.
func TestEnsureDevMFAKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), DevMFAKeyFile)
	var c Config
	w, err := EnsureDevMFAKey(&c, path)
	if err != nil || len(c.MFAEncryptionKey) != 32 || !strings.Contains(w, path) {
		t.Fatalf("first start: key %d bytes, warning %q, err %v", len(c.MFAEncryptionKey), w, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	var again Config
	if _, err := EnsureDevMFAKey(&again, path); err != nil || !bytes.Equal(again.MFAEncryptionKey, c.MFAEncryptionKey) {
		t.Fatalf("restart got another key (err %v)", err)
	}
	set := Config{MFAEncryptionKey: bytes.Repeat([]byte{7}, 32)}
	if w, _ := EnsureDevMFAKey(&set, path); w != "" || set.MFAEncryptionKey[0] != 7 {
		t.Error("configured key replaced")
	}
}

// TestParseMFAKey: 64 hex digits are a key; anything else is refused with
// a message that does not quote the value.
func TestParseMFAKey(t *testing.T) {
	good := strings.Repeat("ab", 32)
	if k, err := parseMFAKey(" " + good + "\n"); err != nil || len(k) != 32 {
		t.Fatalf("good key: %v", err)
	}
	for _, bad := range []string{"", "short", strings.Repeat("ab", 16), strings.Repeat("zz", 32), strings.Repeat("ab", 33)} {
		_, err := parseMFAKey(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error quotes the value: %v", err)
		}
	}
}
