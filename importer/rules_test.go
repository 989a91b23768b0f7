package importer

import (
	"strings"
	"testing"
)

func TestAllowedIPsWildcards(t *testing.T) {
	ok := map[string]string{
		"10.0.*":                    "10.0.0.0/16",
		"10.0.*.*":                  "10.0.0.0/16",
		"192.168.1.*":               "192.168.1.0/24",
		"10.*":                      "10.0.0.0/8",
		"*.*.*.*":                   "0.0.0.0/0",
		" 10.1.2.3 , 172.16.*, ":    "10.1.2.3,172.16.0.0/16",
		"2001:db8::/32,192.0.2.7":   "2001:db8::/32,192.0.2.7",
		"192.0.2.0/24":              "192.0.2.0/24",
		"not-an-ip (checked later)": "not-an-ip (checked later)",
	}
	for in, want := range ok {
		got, why := allowedIPs(&in)
		if why != "" || got == nil || *got != want {
			t.Errorf("allowedIPs(%q) = %v, %q; want %q", in, got, why, want)
		}
	}
	for _, in := range []string{"", "  ", "*", " * "} {
		if got, why := allowedIPs(&in); got != nil || why != "" {
			t.Errorf("allowedIPs(%q) = %v, %q; want no restriction", in, got, why)
		}
	}
	if got, why := allowedIPs(nil); got != nil || why != "" {
		t.Errorf("allowedIPs(nil) = %v, %q", got, why)
	}
	for _, in := range []string{"10.*.0.1", "10.0.0.1*", "*.example.com", "300.*", "010.*", "1.2.3.4.*", "fe80::*"} {
		if _, why := allowedIPs(&in); why == "" || !strings.Contains(why, in) {
			t.Errorf("allowedIPs(%q): %q, want a refusal naming the entry", in, why)
		}
	}
}

func TestRules(t *testing.T) {
	for _, c := range []struct {
		name    string
		problem string
	}{
		{usernameProblem("alice_01"), ""},
		{usernameProblem(" Alice "), ""},
		{usernameProblem("al"), "3 to 50"},
		{usernameProblem(strings.Repeat("a", 51)), "3 to 50"},
		{usernameProblem("john.doe"), "only letters"},
		{usernameProblem("jöhn"), "only letters"},
		{emailProblem("Ann@Example.com"), ""},
		{emailProblem("admin@localhost"), "not an email address"},
		{emailProblem("Ann <ann@example.com>"), "not an email address"},
		{roleNameProblem("trader"), ""},
		{roleNameProblem("power user"), "role name rule"},
		{roleNameProblem("x"), "role name rule"},
		{scopeNameProblem("read:trades"), ""},
		{scopeNameProblem("Read:Trades"), "scope name rule"},
		{scopeNameProblem("admin"), "scope name rule"},
		{clientIDProblem("mt5-service"), ""},
		{clientIDProblem("svc.internal"), "client_id rule"},
		{clientIDProblem(""), "client_id rule"},
		{textProblem("fine"), ""},
		{textProblem("nul\x00byte"), "NUL"},
		{textProblem("bad\xffutf8"), "UTF-8"},
	} {
		if (c.problem == "") != (c.name == "") || !strings.Contains(c.name, c.problem) {
			t.Errorf("problem %q, want %q", c.name, c.problem)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgresql+asyncpg://permiso:pw@db:5432/permiso_prod": "postgresql://permiso:pw@db:5432/permiso_prod",
		"postgres://db/x?sslmode=disable":                      "postgres://db/x?sslmode=disable",
	} {
		if got, err := NormalizeURL(in); err != nil || got != want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"sqlite://permiso.db", "mysql://db/x", "::"} {
		if _, err := NormalizeURL(in); err == nil {
			t.Errorf("NormalizeURL(%q) accepted", in)
		}
	}
}
