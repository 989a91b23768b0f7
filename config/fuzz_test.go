package config

import (
	"strings"
	"testing"
)

func FuzzParseRateLimit(f *testing.F) {
	for _, s := range []string{"5/minute", "3/hour", "", "100/15 minutes", "0/minute", "garbage", "9/9999999999 days", "1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRateLimit(s)
		if err != nil {
			return
		}
		if strings.TrimSpace(s) == "" {
			if !r.Disabled() {
				t.Fatalf("ParseRateLimit(%q) = %v, want disabled", s, r)
			}
			return
		}
		if r.Count < 1 || r.Period <= 0 {
			t.Fatalf("ParseRateLimit(%q) = %v: accepted a non-positive limit", s, r)
		}
		back, err := ParseRateLimit(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip %q -> %v -> %q -> %v, %v", s, r, r.String(), back, err)
		}
	})
}

// FuzzLoad sets one variable (chosen by index) to an arbitrary value: Load
// must never panic, and every problem must name a variable.
func FuzzLoad(f *testing.F) {
	f.Add(uint8(0), "x", false)
	f.Add(uint8(5), "abc", true)
	f.Add(uint8(20), "[\"a\",", false)
	f.Add(uint8(60), "*", true)
	f.Fuzz(func(t *testing.T, idx uint8, value string, prod bool) {
		name := specs[int(idx)%len(specs)].Name
		env := map[string]string{name: value}
		if prod {
			env["ENVIRONMENT"] = "production"
		}
		c, _, err := Load(MapEnv(env), "", false)
		if err != nil {
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			for _, e := range es {
				if _, ok := e.(*VarError); !ok {
					t.Fatalf("problem %q does not name a variable", e)
				}
			}
			return
		}
		// A configuration that loaded must validate again unchanged.
		again := c
		if err := again.Validate(); err != nil {
			t.Fatalf("loaded config fails Validate: %v", err)
		}
		_ = c.Addr()
		_ = c.SQLitePath()
		_ = c.PostgresURL()
		_ = c.MetadataIssuer()
	})
}

func FuzzParseDotenv(f *testing.F) {
	f.Add(guideDotenv)
	f.Add("A=\"x\\\"\nB='y\nC=z # c\nexport D=1\n")
	f.Fuzz(func(t *testing.T, src string) {
		values, _, _ := parseDotenv(src, ".env")
		for k := range values {
			if !validKey(k) {
				t.Fatalf("invalid key %q accepted", k)
			}
		}
	})
}
