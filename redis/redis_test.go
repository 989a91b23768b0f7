package redis

import (
	"context"
	"strings"
	"testing"

	"github.com/permiso/permiso/internal/testdb"
)

func TestHealth(t *testing.T) {
	c := openClient(t, testdb.RedisURL(t), Options{})
	details, err := c.Health(context.Background())
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	if details["backend"] != "redis" {
		t.Fatalf("details = %v", details)
	}
	policy, err := c.MaxMemoryPolicy(context.Background())
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	if (policy == "noeviction") != (details["warning"] == nil) {
		t.Fatalf("policy %q but warning %v", policy, details["warning"])
	}
}

func TestOpenRejectsBadURLWithoutEchoingIt(t *testing.T) {
	_, err := Open("http://user:s3cr3t@host/0", Options{})
	if err == nil {
		t.Fatal("expected an error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	c := openClient(t, "redis://127.0.0.1:1/0", Options{})
	if _, err := c.Health(context.Background()); err == nil {
		t.Fatal("expected an error for an unreachable server")
	}
}

func TestEvictionWarning(t *testing.T) {
	if EvictionWarning("noeviction") != "" {
		t.Fatal("noeviction must not warn")
	}
	for _, p := range []string{"allkeys-lru", "volatile-lru", ""} {
		if EvictionWarning(p) == "" {
			t.Fatalf("%q must warn", p)
		}
	}
}
