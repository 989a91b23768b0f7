package permiso

import (
	"testing"
	"time"
)

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

// TestIssuedTokenDeadAroundCreation: a token issued in the millisecond
// the client was created (its issue time truncated to the millisecond,
// TokenIssuedAt) is the client's; one of an earlier millisecond is not.
func TestIssuedTokenDeadAroundCreation(t *testing.T) {
	created := time.Date(2030, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	c := ServiceClient{CreatedAt: created}
	issued := TokenIssuedAt(NewTokenID(created.Add(50*time.Microsecond)), created)
	if c.IssuedTokenDead(issued) {
		t.Errorf("a token issued at %v, in the creation millisecond of %v, is dead", issued, created)
	}
	if !c.IssuedTokenDead(created.Truncate(time.Millisecond).Add(-time.Millisecond)) {
		t.Error("a token of the millisecond before the creation is alive")
	}
	cut := RevocationCutoff(created.Add(time.Second))
	c.RevokeTokensBefore(cut)
	if !c.IssuedTokenDead(cut.Add(-time.Millisecond)) || c.IssuedTokenDead(cut) {
		t.Errorf("IssuedTokenDead around the cut-off %v is wrong", cut)
	}
}
