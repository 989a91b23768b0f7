package oauth2

import (
	"context"
	"time"
)

// compensationTimeout bounds one step of compensating work: a write that
// settles what a request already did (a lockout place given back or
// counted, an unconfirmed session revoked, a rotation taken back, a login
// recorded). It is well below permiso.LockoutAttemptTTL, after which a
// place that was never given back expires by itself.
const compensationTimeout = 5 * time.Second

// compensating returns the context of compensating work for the request
// context ctx: its values (request metadata, fresh reads) without its
// cancellation, bounded by compensationTimeout. Such work must complete
// even when the client went away (permiso.ClientGone): else an abandoned
// login would leave its lockout place taken, or a session whose tokens
// were never delivered live (docs/abuse-resistance.md, "Lockout").
func compensating(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), compensationTimeout)
}
