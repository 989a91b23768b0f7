package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestProductionNeedsOneAdvertisedIssuer: behind a load balancer every
// instance must advertise the same issuer in its discovery metadata, so
// production refuses the per-instance default http://HOST:PORT.
func TestProductionNeedsOneAdvertisedIssuer(t *testing.T) {
	prod := func(extra map[string]string) map[string]string { return productionEnv("", extra) }
	refused := []struct {
		name string
		env  map[string]string
		want []string // substrings of the one error
	}{
		{"the guide's issuer without PUBLIC_URL", map[string]string{"JWT_ISSUER": "permiso-auth-prod"},
			[]string{"JWT_ISSUER", "PUBLIC_URL", `"permiso-auth-prod"`, "http://localhost:8000"}},
		{"the default issuer without PUBLIC_URL", nil,
			[]string{"JWT_ISSUER", "PUBLIC_URL", `"permiso-auth"`}},
		{"an instance address", map[string]string{"JWT_ISSUER": "permiso-auth-prod", "HOST": "10.0.0.5"},
			[]string{"JWT_ISSUER", "PUBLIC_URL", "http://10.0.0.5:8000"}},
		{"PUBLIC_URL set to the per-instance default", map[string]string{"JWT_ISSUER": "permiso-auth-prod", "PUBLIC_URL": "http://localhost:8000"},
			[]string{"JWT_ISSUER", "PUBLIC_URL"}},
		{"an http issuer URL", map[string]string{"JWT_ISSUER": "http://auth.example.com"},
			[]string{"JWT_ISSUER", "https", `"http://auth.example.com"`}},
		{"an http issuer URL with PUBLIC_URL", map[string]string{"JWT_ISSUER": "http://auth.example.com", "PUBLIC_URL": "https://auth.example.com"},
			[]string{"JWT_ISSUER", "https"}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, prod(tt.env))
			if err == nil {
				t.Fatal("accepted")
			}
			if got := errVars(err); !reflect.DeepEqual(got, []string{"JWT_ISSUER"}) {
				t.Errorf("problems name %v, want [JWT_ISSUER]: %v", got, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}

	accepted := []struct {
		name     string
		env      map[string]string
		metadata string // MetadataIssuer
		warnings int
	}{
		{"an https issuer", map[string]string{"JWT_ISSUER": "https://auth.example.com/"}, "https://auth.example.com", 0},
		{"the guide's issuer with an https PUBLIC_URL", map[string]string{"JWT_ISSUER": "permiso-auth-prod", "PUBLIC_URL": "https://auth.example.com/"}, "https://auth.example.com", 1},
		{"the guide's issuer with an http PUBLIC_URL", map[string]string{"JWT_ISSUER": "permiso-auth-prod", "PUBLIC_URL": "http://auth.internal:8080"}, "http://auth.internal:8080", 1},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			c, w, err := load(t, prod(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.MetadataIssuer(); got != tt.metadata {
				t.Errorf("MetadataIssuer = %q, want %q", got, tt.metadata)
			}
			if len(w) != tt.warnings {
				t.Errorf("warnings = %q, want %d", w, tt.warnings)
			}
			if tt.warnings > 0 && !slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "JWT_ISSUER") }) {
				t.Errorf("no warning recommending a URL issuer: %q", w)
			}
		})
	}

	// A PUBLIC_URL that is not an absolute URL is its own problem.
	_, _, err := load(t, prod(map[string]string{"JWT_ISSUER": "permiso-auth-prod", "PUBLIC_URL": "auth.example.com"}))
	if got := errVars(err); !slices.Contains(got, "PUBLIC_URL") {
		t.Errorf("PUBLIC_URL=auth.example.com: problems %v (%v), want PUBLIC_URL named", got, err)
	}
}

// TestDevelopmentKeepsTheInstanceAddressAsIssuer: outside production the
// defaults still work, with http://HOST:PORT in the metadata.
func TestDevelopmentKeepsTheInstanceAddressAsIssuer(t *testing.T) {
	for _, env := range []string{"development", "test", "staging"} {
		c, w, err := load(t, map[string]string{"ENVIRONMENT": env, "PORT": "9000"})
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		if c.MetadataIssuer() != "http://localhost:9000" || !c.PublicURLIsDefault() {
			t.Errorf("%s: MetadataIssuer = %q, PublicURLIsDefault = %v", env, c.MetadataIssuer(), c.PublicURLIsDefault())
		}
		wantWarn := env == "staging"
		if got := slices.ContainsFunc(w, func(s string) bool { return strings.Contains(s, "JWT_ISSUER") }); got != wantWarn {
			t.Errorf("%s: warnings %q (issuer warning wanted: %v)", env, w, wantWarn)
		}
	}
	// Validate on the defaults (no Load) agrees.
	d := Defaults()
	if !d.PublicURLIsDefault() || d.Validate() != nil {
		t.Errorf("Defaults: PublicURLIsDefault = %v, Validate = %v", d.PublicURLIsDefault(), d.Validate())
	}
}
