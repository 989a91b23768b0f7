package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/mail"
)

// TestPasswordPolicyRefusesCommonPasswords: the policy every path uses
// (create-admin, the API, the expired-password change) includes the
// common-password list.
func TestPasswordPolicyRefusesCommonPasswords(t *testing.T) {
	p := passwordPolicy(config.Defaults())
	errs := p.Check("P030710p$e4o", "admin")
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "common") {
		t.Fatalf("Check(common) = %v, want exactly the common-password rule", errs)
	}
	if errs := p.Check("Choose-A-Str0ng-Passw0rd!", "admin"); len(errs) != 0 {
		t.Fatalf("Check(README's example) = %v", errs)
	}
}

// TestNewMailer: the log mailer without SMTP_HOST (with a warning), SMTP
// with it.
func TestNewMailer(t *testing.T) {
	var buf bytes.Buffer
	a := &app{cfg: config.Defaults(), logger: slog.New(slog.NewTextHandler(&buf, nil))}
	m, err := newMailer(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(mail.Log); !ok || !strings.Contains(buf.String(), "SMTP_HOST is not set") {
		t.Fatalf("mailer %T, log %q", m, buf.String())
	}
	a.cfg.SMTPHost, a.cfg.SMTPFrom = "smtp.example.com", "permiso <no-reply@example.com>"
	m, err = newMailer(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(*mail.SMTP); !ok {
		t.Fatalf("mailer %T with SMTP_HOST", m)
	}
}
