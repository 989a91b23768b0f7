package permiso

import "testing"

func TestNewClientSecretAndAllowedIPs(t *testing.T) {
	s1, h1 := NewClientSecret()
	s2, _ := NewClientSecret()
	if s1 == s2 || len(s1) < 43 || h1 != HashToken(s1) {
		t.Fatalf("NewClientSecret: %q %q", s1, h1)
	}
	got, err := ParseAllowedIPs(" 10.1.2.3/8, 192.0.2.1,, ::ffff:198.51.100.1 , 2001:db8::/32 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.1/32", "198.51.100.1/32", "2001:db8::/32"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "fe80::1%eth0", "1.2.3"} {
		if _, err := ParseAllowedIPs(bad); err == nil {
			t.Errorf("ParseAllowedIPs(%q) accepted", bad)
		}
	}
	if got, err := ParseAllowedIPs(""); err != nil || len(got) != 0 {
		t.Errorf("empty list: %v, %v", got, err)
	}
}
