package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
)

const (
	rClients     = "/api/v1/service-clients"
	rClient      = "/api/v1/service-clients/{client_id}"
	rClientStats = "/api/v1/service-clients/stats/overview"
)

func scopeID(t *testing.T, e *apiEnv, name string) string {
	t.Helper()
	sc, err := e.db.GetScopeByName(e.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return sc.ID.String()
}

func clientToken(e *apiEnv, id, secret string) (int, map[string]any) {
	w := e.form("/api/v1/auth/token", url.Values{"grant_type": {"client_credentials"}}, &[2]string{id, secret})
	m := map[string]any{}
	_ = jsonUnmarshal(w.Body.Bytes(), &m)
	return w.Code, m
}

// TestServiceClientLifecycle: create (secret once), get, list with
// filters and pagination, update, scopes, permissions, rotation with and
// without overlap, usage batching, stats and delete, each response checked
// against the OpenAPI document and the audit log.
func TestServiceClientLifecycle(t *testing.T) {
	e := newAPIEnv(t)
	e.user("root", true)
	admin := e.login("root").AccessToken

	body := map[string]any{"name": "Billing", "client_id": "billing", "scope_ids": []string{scopeID(t, e, "read:profile"), scopeID(t, e, "admin:tokens")},
		"access_token_lifetime": 600, "rate_limit_per_minute": 30, "rate_limit_per_hour": 500,
		"allowed_ips": " 127.0.0.1, 192.0.2.0/24 ,10.1.2.3/8", "contact_email": "ops@example.com", "website_url": "https://billing.example.com"}
	created := want(t, e.call("POST", rClients, rClients, admin, body), http.StatusCreated, "create")
	secret, _ := created["client_secret"].(string)
	c := created["client"].(map[string]any)
	if len(secret) < 40 || c["client_id"] != "billing" || c["access_token_lifetime"] != 600.0 || c["allowed_ips"] != "127.0.0.1,192.0.2.0/24,10.0.0.0/8" ||
		c["can_authenticate"] != true || c["supports_refresh_tokens"] != false || len(c["scopes"].([]any)) != 2 {
		t.Fatalf("created %v", created)
	}
	stored, _ := e.db.GetServiceClientByClientID(e.ctx, "billing")
	if stored.SecretHash != permiso.HashToken(secret) || strings.Contains(stored.SecretHash, secret) {
		t.Fatal("the stored secret is not the hash of the returned one")
	}
	// Not shown again.
	got := want(t, e.call("GET", rClient, rClients+"/billing", admin, nil), 200, "get")
	if strings.Contains(mustJSON(got), secret) || got["name"] != "Billing" {
		t.Fatalf("get %v", got)
	}
	// Duplicates, validation, unknown scope.
	want(t, e.call("POST", rClients, rClients, admin, body), http.StatusConflict, "duplicate client_id")
	bad := want(t, e.call("POST", rClients, rClients, admin, map[string]any{"name": "x", "client_type": "weird", "client_id": "bad id!",
		"access_token_lifetime": 5, "rate_limit_per_minute": 0, "rate_limit_per_hour": 10, "allowed_ips": "300.1.1.1",
		"client_secret": "mine", "contact_email": "nope", "webhook_url": "ftp://x"}), 422, "invalid create")
	fields := map[string]bool{}
	for _, d := range bad["details"].([]any) {
		fields[d.(map[string]any)["field"].(string)] = true
	}
	for _, f := range []string{"name", "client_type", "client_id", "access_token_lifetime", "rate_limit_per_minute", "rate_limit_per_hour", "allowed_ips", "client_secret", "contact_email", "webhook_url"} {
		if !fields[f] {
			t.Errorf("validation details %v do not name %s", bad["details"], f)
		}
	}
	want(t, e.call("POST", rClients, rClients, admin, map[string]any{"name": "ghost", "scope_ids": []string{"00000000-0000-4000-8000-00000000ffff"}}), 400, "unknown scope")
	want(t, e.call("GET", rClient, rClients+"/nope", admin, nil), 404, "unknown client")

	// A second client with defaults, for the list.
	other := want(t, e.call("POST", rClients, rClients, admin, map[string]any{"name": "Public app", "client_type": "public", "is_trusted": true}), 201, "create public")
	oc := other["client"].(map[string]any)
	if !strings.HasPrefix(oc["client_id"].(string), "client_") || oc["rate_limit_per_minute"] != 60.0 || oc["rate_limit_per_hour"] != 1000.0 || oc["access_token_lifetime"] != 600.0 {
		t.Errorf("defaults %v", oc)
	}
	list := want(t, e.call("GET", rClients, rClients+"?per_page=1&page=2", admin, nil), 200, "list page 2")
	if list["total"] != 2.0 || list["pages"] != 2.0 || len(list["clients"].([]any)) != 1 || list["clients"].([]any)[0].(map[string]any)["client_id"] != oc["client_id"] {
		t.Errorf("list page 2 (stable order by created_at): %v", list)
	}
	for q, n := range map[string]float64{"?is_trusted=true": 1, "?client_type=confidential": 1, "?search=BILL": 1, "?scope_id=" + scopeID(t, e, "admin:tokens"): 1, "?is_active=no": 0} {
		l := want(t, e.call("GET", rClients, rClients+q, admin, nil), 200, "list "+q)
		if l["total"] != n {
			t.Errorf("list %s: total %v, want %v", q, l["total"], n)
		}
	}
	want(t, e.call("GET", rClients, rClients+"?per_page=0&page=x&is_active=maybe", admin, nil), 422, "bad paging")

	// A client token; usage is counted without a write per request.
	code, tok := clientToken(e, "billing", secret)
	if code != 200 || tok["expires_in"] != 600.0 {
		t.Fatalf("client token: %d %v", code, tok)
	}
	if p, ok := e.usage.Pending(stored.ID); !ok || p.Requests != 1 {
		t.Errorf("usage pending %+v", p)
	}
	if err := e.usage.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
	got = want(t, e.call("GET", rClient, rClients+"/billing", admin, nil), 200, "get after use")
	if got["total_requests"] != 1.0 || got["last_used"] == nil {
		t.Errorf("usage not recorded: %v", got)
	}

	// Live per-client counters: one token request counted so far.
	rl := want(t, e.call("GET", "/api/v1/service-clients/{client_id}/rate-limit", rClients+"/billing/rate-limit", admin, nil), 200, "rate-limit")
	if rl["per_minute_limit"] != 30.0 || rl["per_minute_remaining"] != 29.0 || rl["per_hour_limit"] != 500.0 ||
		rl["per_hour_remaining"] != 499.0 || rl["is_rate_limited"] != false {
		t.Errorf("rate-limit %v", rl)
	}

	// Update and scopes.
	upd := want(t, e.call("PUT", rClient, rClients+"/billing", admin, map[string]any{"description": "Invoices", "is_trusted": true,
		"allowed_ips": "", "scope_ids": []string{scopeID(t, e, "read:profile")}}), 200, "update")
	if upd["description"] != "Invoices" || upd["is_trusted"] != true || upd["allowed_ips"] != nil || len(upd["scopes"].([]any)) != 1 || upd["name"] != "Billing" {
		t.Errorf("update %v", upd)
	}
	want(t, e.call("PUT", rClient, rClients+"/billing", admin, map[string]any{"rate_limit_per_hour": 1}), 422, "update out of range")
	sc := want(t, e.call("PUT", "/api/v1/service-clients/{client_id}/scopes", rClients+"/billing/scopes", admin,
		map[string]any{"scope_ids": []string{scopeID(t, e, "admin:users"), scopeID(t, e, "read:profile")}}), 200, "scopes")
	if len(sc["scopes"].([]any)) != 2 {
		t.Errorf("scopes %v", sc)
	}
	perm := want(t, e.call("GET", "/api/v1/service-clients/{client_id}/permissions", rClients+"/billing/permissions", admin, nil), 200, "permissions")
	if perm["can_access_admin"] != true || mustJSON(perm["resources"]) != `{"profile":["read"],"users":["admin"]}` {
		t.Errorf("permissions %v", perm)
	}

	// Rotation without overlap: the old secret stops at once.
	rot := want(t, e.call("POST", "/api/v1/service-clients/{client_id}/rotate-secret", rClients+"/billing/rotate-secret", admin, map[string]any{"current_secret": secret}), 200, "rotate")
	newSecret := rot["client_secret"].(string)
	if newSecret == secret || rot["previous_secret_expires_at"] != nil {
		t.Fatalf("rotate %v", rot)
	}
	if code, _ := clientToken(e, "billing", secret); code != http.StatusUnauthorized {
		t.Errorf("old secret after rotation: %d, want 401", code)
	}
	if code, _ := clientToken(e, "billing", newSecret); code != 200 {
		t.Errorf("new secret: %d", code)
	}
	want(t, e.call("POST", "/api/v1/service-clients/{client_id}/rotate-secret", rClients+"/billing/rotate-secret", admin, map[string]any{"current_secret": "wrong"}), 422, "rotate with a wrong current secret")
	// With an overlap both work until it ends.
	rot = want(t, e.call("POST", "/api/v1/service-clients/{client_id}/rotate-secret", rClients+"/billing/rotate-secret", admin, map[string]any{"overlap_seconds": 3600}), 200, "rotate with overlap")
	third := rot["client_secret"].(string)
	if rot["previous_secret_expires_at"] == nil {
		t.Errorf("overlap not reported: %v", rot)
	}
	for _, sct := range []string{newSecret, third} {
		if code, _ := clientToken(e, "billing", sct); code != 200 {
			t.Errorf("secret during the overlap: %d", code)
		}
	}
	// An admin rotation without a body works too (lost secret).
	rot = want(t, e.call("POST", "/api/v1/service-clients/{client_id}/rotate-secret", rClients+"/billing/rotate-secret", admin, nil), 200, "rotate without body")
	third = rot["client_secret"].(string)

	// Stats count today's client tokens from the audit log.
	e.flushAudit()
	st := want(t, e.call("GET", rClientStats, rClientStats, admin, nil), 200, "stats")
	if st["total_clients"] != 2.0 || st["active_clients"] != 2.0 || st["trusted_clients"] != 2.0 || st["total_requests_today"] != 4.0 {
		t.Errorf("stats %v (want 4 tokens issued today)", st)
	}
	if top := st["most_active_clients"].([]any); len(top) != 1 || top[0].(map[string]any)["client_id"] != "billing" || top[0].(map[string]any)["requests"] != 4.0 {
		t.Errorf("most active %v", top)
	}

	// Delete: its token stops at once.
	cur, tokNow := clientToken(e, "billing", third)
	if cur != 200 {
		t.Fatal(cur)
	}
	bearer := tokNow["access_token"].(string)
	if _, err := e.svc.Authenticate(e.ctx, bearer, nil); err != nil {
		t.Fatalf("token before delete: %v", err)
	}
	want(t, e.call("DELETE", rClient, rClients+"/billing", admin, nil), 204, "delete")
	if _, err := e.svc.Authenticate(e.ctx, bearer, nil); permiso.ErrorCode(err) != permiso.EINVALIDTOKEN {
		t.Errorf("token after delete: %v, want invalid_token", err)
	}
	want(t, e.call("DELETE", rClient, rClients+"/billing", admin, nil), 404, "delete twice")
	// Created again under the same client_id (a second later), the old
	// client's token stays dead.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	want(t, e.call("POST", rClients, rClients, admin, map[string]any{"name": "Billing again", "client_id": "billing"}), 201, "re-create")
	if _, err := e.svc.Authenticate(e.ctx, bearer, nil); permiso.ErrorCode(err) != permiso.EINVALIDTOKEN {
		t.Errorf("old token after the client_id was re-created: %v, want invalid_token", err)
	}

	// Audit of the admin mutations.
	e.flushAudit()
	for action, n := range map[string]int{"client.create": 3, "client.update": 1, "client.scopes_update": 1, "client.rotate_secret": 3, "client.delete": 1} {
		evs, _, err := e.db.ListAuditEvents(e.ctx, permiso.AuditFilter{Action: action, Result: "success"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != n {
			t.Errorf("%s: %d audit events, want %d", action, len(evs), n)
		}
		for _, ev := range evs {
			if ev.ActorType != "user" || ev.RequestID == nil || ev.IPAddress == nil || ev.TargetType == nil || *ev.TargetType != "service_client" {
				t.Errorf("%s event incomplete: %+v", action, ev)
			}
		}
	}
}

// TestServiceClientAccess: admin:clients is required; a plain user gets
// 403 and no token 401; a service client holding admin:clients may manage
// clients.
func TestServiceClientAccess(t *testing.T) {
	e := newAPIEnv(t)
	e.user("root", true)
	e.user("plain", false, "user")
	admin, plain := e.login("root").AccessToken, e.login("plain").AccessToken
	want(t, e.call("GET", rClients, rClients, "", nil), 401, "no token")
	want(t, e.call("GET", rClients, rClients, plain, nil), 403, "plain user")
	created := want(t, e.call("POST", rClients, rClients, admin, map[string]any{"name": "Manager", "client_id": "mgr",
		"scope_ids": []string{scopeID(t, e, "admin:clients")}}), 201, "create manager")
	code, tok := clientToken(e, "mgr", created["client_secret"].(string))
	if code != 200 {
		t.Fatal(code)
	}
	want(t, e.call("GET", rClients, rClients, tok["access_token"].(string), nil), 200, "client with admin:clients")
	want(t, e.call("GET", "/api/v1/admin/dashboard/stats", "/api/v1/admin/dashboard/stats", tok["access_token"].(string), nil), 403, "client without admin:users")
}
