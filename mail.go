package permiso

import "context"

// MailMessage is one plain-text mail to one recipient.
type MailMessage struct {
	To      string // a bare address, "user@example.com"
	Subject string
	Text    string // plain-text body
}

// Mailer sends mail (password reset and email verification links). The
// mail package implements it over SMTP, and by writing to the log when no
// SMTP server is configured.
type Mailer interface {
	// Send delivers m or returns why it could not. It honours ctx.
	Send(ctx context.Context, m MailMessage) error
}
