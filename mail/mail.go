// Package mail sends permiso's mail (password reset and email
// verification links): over SMTP with net/smtp when SMTP_HOST is set, with
// STARTTLS required by default (SMTP_STARTTLS) or implicit TLS on port 465;
// otherwise into the log, so a development setup works without a mail
// server.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/permiso/permiso"
)

// DefaultTimeout bounds one delivery (connect, TLS, dialogue) when the
// context has no earlier deadline.
const DefaultTimeout = 30 * time.Second

// SMTPConfig configures an SMTP mailer (SMTP_* settings).
type SMTPConfig struct {
	Host string
	Port int
	// Username and Password, when Username is set, authenticate with
	// AUTH PLAIN, which net/smtp only does over TLS (or to localhost).
	Username string
	Password string
	// From is the From header, "name <addr>" or "addr"; its address is the
	// envelope sender.
	From string
	// StartTLS requires the server to offer STARTTLS and upgrades before
	// anything else is sent; without it the dialogue stays in clear text.
	// Port 465 is TLS from the first byte either way.
	StartTLS bool
	// TLSConfig, when set, is used for TLS (its ServerName defaults to
	// Host); nil means the system's roots and ServerName Host.
	TLSConfig *tls.Config
	// Timeout defaults to DefaultTimeout.
	Timeout time.Duration
	// HelloName is sent with EHLO; default "localhost".
	HelloName string
}

// SMTP sends mail through one SMTP server, one connection per message.
type SMTP struct {
	cfg  SMTPConfig
	from *mail.Address
}

// NewSMTP checks the configuration and returns a mailer.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: SMTP host is empty")
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mail: SMTP port %d is invalid", cfg.Port)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: From %q: %w", cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	return &SMTP{cfg: cfg, from: from}, nil
}

func (m *SMTP) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.cfg.TLSConfig != nil {
		c = m.cfg.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = m.cfg.Host
	}
	return c
}

// Send delivers msg. It honours ctx's deadline and cancellation.
func (m *SMTP) Send(ctx context.Context, msg permiso.MailMessage) (err error) {
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		return fmt.Errorf("mail: recipient %q: %w", msg.To, err)
	}
	body, err := m.compose(to, msg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(m.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	addr := net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("mail: connect to %s: %w", addr, err)
	}
	// The dialogue is bounded by the deadline, and stopped by ctx.
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	implicitTLS := m.cfg.Port == 465
	if implicitTLS {
		tc := tls.Client(conn, m.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("mail: TLS with %s: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: %s: %w", addr, err)
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := c.Hello(m.cfg.HelloName); err != nil {
		return fmt.Errorf("mail: EHLO: %w", err)
	}
	if m.cfg.StartTLS && !implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("mail: %s does not offer STARTTLS (SMTP_STARTTLS=true requires it)", addr)
		}
		if err := c.StartTLS(m.tlsConfig()); err != nil {
			return fmt.Errorf("mail: STARTTLS: %w", err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.cfg.Host)); err != nil {
			return fmt.Errorf("mail: AUTH: %w", err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("mail: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("mail: QUIT: %w", err)
	}
	return nil
}

// compose writes the message: RFC 5322 headers (the subject encoded per
// RFC 2047, so no header can be injected) and a quoted-printable UTF-8
// plain-text body.
func (m *SMTP) compose(to *mail.Address, msg permiso.MailMessage) ([]byte, error) {
	var b bytes.Buffer
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	_, domain, _ := strings.Cut(m.from.Address, "@")
	subject := strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, msg.Subject)
	fmt.Fprintf(&b, "From: %s\r\n", m.from.String())
	fmt.Fprintf(&b, "To: %s\r\n", to.String())
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id), domain)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := strings.ReplaceAll(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Log is the mailer used without SMTP_HOST: it writes each message,
// including the link it carries, to the log at INFO level, for
// development. Never use it where the log is less private than the
// mailboxes.
type Log struct {
	Logger *slog.Logger
}

// Send logs msg.
func (l Log) Send(ctx context.Context, msg permiso.MailMessage) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "mail not sent (SMTP_HOST is not set); message follows",
		slog.String("to", msg.To), slog.String("subject", msg.Subject), slog.String("text", msg.Text))
	return nil
}
