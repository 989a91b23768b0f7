package redis

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestOpenAppliesOptions: in every mode, Open takes the password, pool
// size, retries and dial attempts of Options over those of the URL, and
// the timeouts from Options; without them, the URL's password stays (for
// Sentinel, the URL's password is the master's, not the sentinels').
// Open does not dial, so no server is needed.
func TestOpenAppliesOptions(t *testing.T) {
	type applied struct {
		password                               string
		poolSize, maxRetries, dialerRetries    int
		dialTimeout, readTimeout, writeTimeout time.Duration
	}
	read := func(t *testing.T, c *Client) applied {
		switch r := c.rdb.(type) {
		case *goredis.ClusterClient:
			o := r.Options()
			return applied{o.Password, o.PoolSize, o.MaxRetries, o.DialerRetries, o.DialTimeout, o.ReadTimeout, o.WriteTimeout}
		case *goredis.Client:
			o := r.Options()
			return applied{o.Password, o.PoolSize, o.MaxRetries, o.DialerRetries, o.DialTimeout, o.ReadTimeout, o.WriteTimeout}
		}
		t.Fatalf("client of type %T", c.rdb)
		return applied{}
	}
	opts := Options{Password: "opt-pw", PoolSize: 7, MaxRetries: 4, DialAttempts: 3,
		DialTimeout: 300 * time.Millisecond, Timeout: 400 * time.Millisecond}
	want := applied{"opt-pw", 7, 4, 3, 300 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}
	for _, in := range []string{
		"redis://:url-pw@127.0.0.1:1/0",
		"redis+cluster://:url-pw@127.0.0.1:1,127.0.0.1:2",
		"redis+sentinel://:url-pw@127.0.0.1:1/mymaster",
	} {
		c, err := Open(in, opts)
		if err != nil {
			t.Fatalf("Open(%q): %v", in, err)
		}
		if got := read(t, c); got != want {
			t.Errorf("Open(%q) with options applied %+v, want %+v", in, got, want)
		}
		c.Close()

		c, err = Open(in, Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", in, err)
		}
		if got := read(t, c); got.password != "url-pw" || got.dialTimeout != 2*time.Second || got.readTimeout != 2*time.Second {
			t.Errorf("Open(%q) without options applied %+v, want the URL's password and 2s timeouts", in, got)
		}
		c.Close()
	}
}
