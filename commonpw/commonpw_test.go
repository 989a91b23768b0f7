package commonpw_test

import (
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/commonpw"
)

func TestListSize(t *testing.T) {
	if n := commonpw.Len(); n < 10000 {
		t.Fatalf("Len() = %d, want at least 10,000 common passwords", n)
	}
}

func TestContains(t *testing.T) {
	for _, p := range []string{"password", "PASSWORD", "Password", "123456", "qwertyuiop", " letmein ", "Trustno1", "1qaz2wsx3edc", "qwertyuiop12"} {
		if !commonpw.Contains(p) {
			t.Errorf("Contains(%q) = false, want true", p)
		}
	}
	for _, p := range []string{"", "Tq8#vLm2!pZr-e2e-Kx4", "correct horse battery staple 42", "# Common passwords"} {
		if commonpw.Contains(p) {
			t.Errorf("Contains(%q) = true, want false", p)
		}
	}
}

// TestPolicy: a list password breaks the policy even when it satisfies
// every other rule, and the answer lists every broken rule.
func TestPolicy(t *testing.T) {
	p := permiso.PasswordPolicy{MinLength: 8, RequireLowercase: true, RequireDigits: true, Common: commonpw.Contains}
	if errs := p.Check("Qwertyuiop12", ""); len(errs) != 1 || errs[0].Message != "Password is too common" {
		t.Errorf("Check(Qwertyuiop12) = %v, want exactly \"Password is too common\"", errs)
	}
	if errs := p.Check("xK9-not-on-any-list", ""); len(errs) != 0 {
		t.Errorf("Check(uncommon) = %v, want none", errs)
	}
}

func BenchmarkContains(b *testing.B) {
	commonpw.Contains("warm up")
	for b.Loop() {
		commonpw.Contains("Sunshine-2024!")
	}
}
