package config

import (
	"strings"
	"testing"
)

// TestRedisURLForms: REDIS_URL accepts one server, Redis Cluster and
// Sentinel URLs (docs/abuse-resistance.md), and nothing else.
func TestRedisURLForms(t *testing.T) {
	for _, u := range []string{
		"redis://redis:6379/0",
		"rediss://:pw@redis:6380/1",
		"unix:///run/redis.sock",
		"redis://h1:7000,h2:7001,h3:7002",
		"redis+cluster://h1:7000",
		"rediss+cluster://h1:7000,h2:7001",
		"redis+sentinel://s1:26379,s2:26379/mymaster",
		"rediss+sentinel://:pw@s1:26379/mymaster/2",
	} {
		if _, _, err := load(t, map[string]string{"REDIS_URL": u}); err != nil {
			t.Errorf("REDIS_URL=%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://redis:6379", "redis+memcached://h:1", "memcached://h:1"} {
		_, _, err := load(t, map[string]string{"REDIS_URL": u})
		if err == nil || !strings.Contains(err.Error(), "REDIS_URL: is not a redis://") {
			t.Errorf("REDIS_URL=%s: err = %v", u, err)
		}
	}
}
