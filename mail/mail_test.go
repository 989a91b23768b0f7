package mail_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/smtptest"
	"github.com/permiso/permiso/mail"
)

func newSMTP(t *testing.T, srv *smtptest.Server, mutate func(*mail.SMTPConfig)) *mail.SMTP {
	t.Helper()
	cfg := mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "permiso <noreply@example.com>",
		StartTLS: true, TLSConfig: &tls.Config{RootCAs: srv.RootCAs}, Timeout: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	m, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var msg = permiso.MailMessage{
	To:      "alice@example.com",
	Subject: "Réinitialiser\r\nBcc: evil@example.com",
	Text:    "Hello alice,\n\nopen http://localhost:8000/reset-password?token=abc.def\n.\n..leading dots\n" + strings.Repeat("x", 200) + "\n",
}

// TestSTARTTLSWithAuth: the real dialogue over TCP, upgraded with
// STARTTLS to a server whose self-signed certificate the client trusts,
// then AUTH PLAIN; the received message decodes to what was sent and no
// header was injected.
func TestSTARTTLSWithAuth(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{StartTLS: true, Username: "mailer", Password: "s3cret"})
	m := newSMTP(t, srv, func(c *mail.SMTPConfig) { c.Username, c.Password = "mailer", "s3cret" })
	if err := m.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.Wait(t, 5*time.Second)
	if !got.TLS || got.Auth != "mailer" {
		t.Errorf("TLS %v auth %q, want TLS and auth mailer", got.TLS, got.Auth)
	}
	if got.From != "noreply@example.com" || len(got.To) != 1 || got.To[0] != "alice@example.com" {
		t.Errorf("envelope from %q to %v", got.From, got.To)
	}
	if s := got.Header("Subject"); s != "Réinitialiser  Bcc: evil@example.com" {
		t.Errorf("Subject %q", s)
	}
	if b := got.Header("Bcc"); b != "" {
		t.Errorf("a Bcc header was injected: %q", b)
	}
	if got.Header("From") != `"permiso" <noreply@example.com>` || got.Header("To") != "<alice@example.com>" {
		t.Errorf("From %q To %q", got.Header("From"), got.Header("To"))
	}
	if body := got.Body(); body != msg.Text {
		t.Errorf("body %q, want %q", body, msg.Text)
	}
}

// TestSTARTTLSRequired: with SMTP_STARTTLS on, a server that does not
// offer STARTTLS gets nothing, not even the mail in clear text.
func TestSTARTTLSRequired(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	m := newSMTP(t, srv, nil)
	err := m.Send(t.Context(), msg)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want a STARTTLS error", err)
	}
	srv.None(t, 100*time.Millisecond)
}

// TestUntrustedCertificate: STARTTLS to a certificate the client does not
// trust fails.
func TestUntrustedCertificate(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{StartTLS: true})
	m := newSMTP(t, srv, func(c *mail.SMTPConfig) { c.TLSConfig = nil })
	if err := m.Send(t.Context(), msg); err == nil {
		t.Fatal("Send succeeded with an untrusted certificate")
	}
	srv.None(t, 100*time.Millisecond)
}

// TestPlain: with STARTTLS off, plain SMTP (with AUTH, which net/smtp
// allows in clear text only to localhost).
func TestPlain(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Username: "u", Password: "p"})
	m := newSMTP(t, srv, func(c *mail.SMTPConfig) { c.StartTLS, c.Username, c.Password = false, "u", "p" })
	if err := m.Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := srv.Wait(t, 5*time.Second); got.TLS || got.Auth != "u" {
		t.Errorf("TLS %v auth %q", got.TLS, got.Auth)
	}
}

func TestWrongPassword(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{StartTLS: true, Username: "u", Password: "p"})
	m := newSMTP(t, srv, func(c *mail.SMTPConfig) { c.Username, c.Password = "u", "wrong" })
	if err := m.Send(t.Context(), msg); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("Send = %v, want an AUTH error", err)
	}
}

func TestContextCancelled(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{StartTLS: true})
	m := newSMTP(t, srv, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Send(ctx, msg); err == nil {
		t.Fatal("Send with a cancelled context succeeded")
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []mail.SMTPConfig{
		{Port: 25, From: "a@b.example"},
		{Host: "h", Port: 0, From: "a@b.example"},
		{Host: "h", Port: 25, From: "not an address"},
	} {
		if _, err := mail.NewSMTP(c); err == nil {
			t.Errorf("NewSMTP(%+v) succeeded", c)
		}
	}
	srv := smtptest.Start(t, smtptest.Options{StartTLS: true})
	m := newSMTP(t, srv, nil)
	if err := m.Send(t.Context(), permiso.MailMessage{To: "bad\r\nBcc: x@y", Subject: "s", Text: "t"}); err == nil {
		t.Error("Send to a malformed recipient succeeded")
	}
}

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	l := mail.Log{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	if err := l.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "alice@example.com") || !strings.Contains(buf.String(), "token=abc.def") {
		t.Errorf("log %s lacks the recipient or the link", buf.String())
	}
}
