package oauth2_test

import (
	"encoding/base64"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/permiso/permiso/oauth2"
)

func b64(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseTokenRequest(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name    string
		body    string
		auth    string
		want    oauth2.TokenRequest
		code    string // expected error code, "" for success
		desc    string // substring of the description
		basicCh bool
	}{
		{
			name: "grant_type defaults to password",
			body: "username=alice&password=pw",
			want: oauth2.TokenRequest{GrantType: "password", Username: "alice", Password: "pw", ClientAuth: oauth2.ClientAuthNone},
		},
		{
			name: "empty grant_type counts as absent (RFC 6749 3.1)",
			body: "grant_type=&username=alice&password=pw",
			want: oauth2.TokenRequest{GrantType: "password", Username: "alice", Password: "pw", ClientAuth: oauth2.ClientAuthNone},
		},
		{
			name: "password with scope sorted and de-duplicated",
			body: "grant_type=password&username=alice&password=pw&scope=write:profile+read:profile++write:profile",
			want: oauth2.TokenRequest{GrantType: "password", Username: "alice", Password: "pw",
				Scope: []string{"read:profile", "write:profile"}, ScopeGiven: true, ClientAuth: oauth2.ClientAuthNone},
		},
		{
			name: "empty scope is absent",
			body: "username=alice&password=pw&scope=",
			want: oauth2.TokenRequest{GrantType: "password", Username: "alice", Password: "pw", ClientAuth: oauth2.ClientAuthNone},
		},
		{
			// The password grant answers it as an unknown user
			// (TestPasswordGrantUnstorableUsername).
			name: "a username of any bytes is the grant's to judge",
			body: "username=a%00b%FF%01&password=pw",
			want: oauth2.TokenRequest{GrantType: "password", Username: "a\x00b\xff\x01", Password: "pw", ClientAuth: oauth2.ClientAuthNone},
		},
		{
			name: "refresh",
			body: "grant_type=refresh_token&refresh_token=abc&username=ignored",
			want: oauth2.TokenRequest{GrantType: "refresh_token", RefreshToken: "abc", ClientAuth: oauth2.ClientAuthNone},
		},
		{
			name: "client credentials with Basic, URL-encoded ':' and '%' in id and secret",
			body: "grant_type=client_credentials",
			auth: b64("my%3Aclient%25x:s%3Acr%25t+1"),
			want: oauth2.TokenRequest{GrantType: "client_credentials", ClientID: "my:client%x", ClientSecret: "s:cr%t 1", ClientAuth: oauth2.ClientAuthBasic},
		},
		{
			name: "Basic scheme is case-insensitive",
			body: "grant_type=client_credentials",
			auth: "bAsIc " + base64.StdEncoding.EncodeToString([]byte("svc:sec")),
			want: oauth2.TokenRequest{GrantType: "client_credentials", ClientID: "svc", ClientSecret: "sec", ClientAuth: oauth2.ClientAuthBasic},
		},
		{
			name: "client credentials in the form",
			body: "grant_type=client_credentials&client_id=svc&client_secret=sec&scope=a",
			want: oauth2.TokenRequest{GrantType: "client_credentials", ClientID: "svc", ClientSecret: "sec",
				ClientAuth: oauth2.ClientAuthPost, Scope: []string{"a"}, ScopeGiven: true},
		},
		{
			name: "a Bearer header is not client authentication",
			body: "grant_type=refresh_token&refresh_token=x",
			auth: "Bearer abc",
			want: oauth2.TokenRequest{GrantType: "refresh_token", RefreshToken: "x", ClientAuth: oauth2.ClientAuthNone},
		},
		{name: "repeated parameter", body: "username=a&password=b&password=c", code: "invalid_request", desc: "Repeated parameter: password"},
		{name: "repeated grant_type", body: "grant_type=password&grant_type=password&username=a&password=b", code: "invalid_request", desc: "Repeated parameter: grant_type"},
		{name: "repeated unknown parameter with unsafe name", body: "%22x=1&%22x=2&username=a&password=b", code: "invalid_request", desc: "Repeated parameter"},
		{name: "repeated scope", body: "username=a&password=b&scope=x&scope=y", code: "invalid_request", desc: "scope"},
		{name: "unknown grant", body: "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x", code: "unsupported_grant_type"},
		{name: "code grant without code", body: "grant_type=authorization_code&redirect_uri=https://rp/cb&client_id=rp", code: "invalid_request", desc: "code"},
		{name: "code grant without redirect_uri", body: "grant_type=authorization_code&code=x&client_id=rp", code: "invalid_request", desc: "redirect_uri"},
		{name: "code grant with a long code_verifier", body: "grant_type=authorization_code&code=x&client_id=rp&redirect_uri=https://rp/cb&code_verifier=" + strings.Repeat("a", 129), code: "invalid_request", desc: "code_verifier"},
		{name: "both Basic and form credentials", body: "grant_type=client_credentials&client_id=svc&client_secret=x", auth: b64("svc:x"), code: "invalid_request"},
		{name: "Basic and a form client_id alone", body: "grant_type=client_credentials&client_id=svc", auth: b64("svc:x"), code: "invalid_request"},
		{name: "malformed Basic: not base64", body: "grant_type=client_credentials", auth: "Basic !!!", code: "invalid_client", basicCh: true},
		{name: "malformed Basic: no colon", body: "grant_type=client_credentials", auth: b64("svc"), code: "invalid_client", basicCh: true},
		{name: "malformed Basic: bad escape", body: "grant_type=client_credentials", auth: b64("svc%zz:x"), code: "invalid_client", basicCh: true},
		{name: "Basic with empty secret", body: "grant_type=client_credentials", auth: b64("svc:"), code: "invalid_client", basicCh: true},
		{name: "Basic with nothing", body: "grant_type=client_credentials", auth: "Basic", code: "invalid_client", basicCh: true},
		{name: "client_id without secret", body: "grant_type=client_credentials&client_id=svc", code: "invalid_client", desc: "client_secret"},
		{name: "secret without client_id", body: "grant_type=client_credentials&client_secret=x", code: "invalid_client", desc: "client_id"},
		{name: "missing username", body: "grant_type=password&password=x", code: "invalid_request", desc: "Missing parameter: username"},
		{name: "missing password", body: "username=alice", code: "invalid_request", desc: "Missing parameter: password"},
		{name: "missing refresh_token", body: "grant_type=refresh_token", code: "invalid_request", desc: "Missing parameter: refresh_token"},
		{name: "username too long", body: "username=" + long(321) + "&password=x", code: "invalid_request", desc: "username"},
		{name: "password too long", body: "username=a&password=" + long(4097), code: "invalid_request", desc: "password"},
		{name: "refresh token too long", body: "grant_type=refresh_token&refresh_token=" + long(4097), code: "invalid_request", desc: "refresh_token"},
		{name: "invalid scope character", body: "username=a&password=x&scope=a%22b", code: "invalid_scope"},
		{name: "scope with tab", body: "username=a&password=x&scope=a%09b", code: "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, err := url.ParseQuery(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := oauth2.ParseTokenRequest(form, tt.auth)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v\nwant %+v", got, tt.want)
				}
				return
			}
			var oe *oauth2.Error
			if !errors.As(err, &oe) {
				t.Fatalf("err = %v, want *oauth2.Error %s", err, tt.code)
			}
			if oe.Code != tt.code || oe.Status >= 500 || oe.Status < 400 {
				t.Fatalf("err = %s status %d, want %s", oe.Code, oe.Status, tt.code)
			}
			if !strings.Contains(oe.Description, tt.desc) {
				t.Errorf("description %q does not contain %q", oe.Description, tt.desc)
			}
			if oe.BasicChallenge != tt.basicCh {
				t.Errorf("BasicChallenge = %v, want %v", oe.BasicChallenge, tt.basicCh)
			}
			if tt.code == "invalid_client" && oe.Status != 401 {
				t.Errorf("invalid_client status %d, want 401", oe.Status)
			}
		})
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		invalid bool
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "read:profile", want: []string{"read:profile"}},
		{in: "b a  c a ", want: []string{"a", "b", "c"}},
		{in: "!#[]~", want: []string{"!#[]~"}},
		{in: `a"b`, invalid: true},
		{in: `a\b`, invalid: true},
		{in: "a\tb", invalid: true},
		{in: "a\nb", invalid: true},
		{in: "é", invalid: true},
		{in: "a\x7f", invalid: true},
		{in: strings.Repeat("s ", 64), want: []string{"s"}},
		{in: strings.Repeat("s ", 65), invalid: true},
		{in: strings.Repeat("x", 2049), invalid: true},
	}
	for _, tt := range tests {
		got, err := oauth2.ParseScope(tt.in)
		if tt.invalid {
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code != "invalid_scope" || oe.Status != 400 {
				t.Errorf("ParseScope(%q) err = %v, want invalid_scope", tt.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseTokenRequest(f *testing.F) {
	f.Add("grant_type=password&username=a&password=b", "")
	f.Add("grant_type=client_credentials&scope=a+b", b64("id%3A1:se%25c"))
	f.Add("grant_type=refresh_token&refresh_token=x&client_id=c&client_secret=s", "")
	f.Add("a=1&a=2", "Basic ????")
	f.Add("scope=%22", "Bearer x")
	f.Fuzz(func(t *testing.T, body, auth string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // the HTTP layer answers unparsable bodies itself
		}
		req, err := oauth2.ParseTokenRequest(form, auth)
		if err != nil {
			var oe *oauth2.Error
			if !errors.As(err, &oe) {
				t.Fatalf("error %v is not *oauth2.Error", err)
			}
			if oe.Status < 400 || oe.Status > 499 {
				t.Fatalf("status %d is not 4xx", oe.Status)
			}
			for i := 0; i < len(oe.Description); i++ {
				if c := oe.Description[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					t.Fatalf("description %q has a character RFC 6749 5.2 forbids", oe.Description)
				}
			}
			return
		}
		switch req.GrantType {
		case "password", "refresh_token", "client_credentials", "authorization_code":
		default:
			t.Fatalf("grant type %q accepted", req.GrantType)
		}
		// A secret never comes without its client id; a client id comes
		// alone only from a public client, in the code exchange and the
		// refresh (RFC 6749 4.1.3, 6), never with an Authorization header's
		// credentials.
		if req.ClientSecret != "" && req.ClientID == "" {
			t.Fatal("client secret without a client id")
		}
		if req.ClientID != "" && req.ClientSecret == "" &&
			(req.ClientAuth != oauth2.ClientAuthNone || (req.GrantType != "authorization_code" && req.GrantType != "refresh_token")) {
			t.Fatalf("client id %q without a secret accepted for %s (%s)", req.ClientID, req.GrantType, req.ClientAuth)
		}
		if req.ScopeGiven != (len(req.Scope) > 0) {
			t.Fatal("ScopeGiven inconsistent")
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "a b", "read:profile  write:profile", "a\"b", "\x00", strings.Repeat("x ", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := oauth2.ParseScope(s)
		if err != nil {
			var oe *oauth2.Error
			if !errors.As(err, &oe) || oe.Code != "invalid_scope" {
				t.Fatalf("err = %v", err)
			}
			return
		}
		if len(got) > oauth2.MaxScopes {
			t.Fatalf("%d scopes", len(got))
		}
		for i, tok := range got {
			if !oauth2.ValidScopeToken(tok) {
				t.Fatalf("invalid token %q", tok)
			}
			if i > 0 && got[i-1] >= tok {
				t.Fatalf("not sorted and unique: %q", got)
			}
		}
		// Round trip: joining and parsing again is stable.
		again, err := oauth2.ParseScope(strings.Join(got, " "))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip %q -> %q, %v", got, again, err)
		}
	})
}
