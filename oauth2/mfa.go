package oauth2

import (
	"context"
	"errors"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/mfa"
)

// Second factors at sign-in (docs/mfa.md).

// MFADeps are the parts the second step of a sign-in works with: the same
// store, secret box and used-once codes as enrollment (identity.MFADeps),
// so that a code accepted by one is refused by the other, on every
// instance sharing the OnceStore.
type MFADeps struct {
	// Store keeps factors and recovery codes; nil asks no second factor.
	Store permiso.MFAStore
	// Box opens factor secrets (MFA_ENCRYPTION_KEY); nil refuses codes
	// (EUNAVAILABLE).
	Box *mfa.Box
	// Once remembers the one-time passwords already accepted; nil refuses
	// codes (fail closed).
	Once permiso.OnceStore
}

// SecondFactorState is what sign-in must ask of a user: Required when the
// user holds a role of MFA_REQUIRED_ROLES, Enrolled when the user has a
// confirmed factor. A user with Enrolled is asked for a code; a user with
// Required but not Enrolled must enroll first.
type SecondFactorState struct {
	Required bool
	Enrolled bool
}

// SecondFactor returns the user's SecondFactorState. Roles are read from
// u as given: a role change takes effect at the next sign-in.
func (s *Service) SecondFactor(ctx context.Context, u permiso.User) (SecondFactorState, error) {
	st := SecondFactorState{Required: permiso.MFARequiredBy(u, s.cfg.MFARequiredRoles)}
	if s.deps.MFA.Store == nil {
		return st, nil
	}
	f, err := s.deps.MFA.Store.GetMFAFactor(ctx, u.ID, string(mfa.KindTOTP))
	switch {
	case err == nil:
		st.Enrolled = f.Confirmed()
	case !errors.Is(err, permiso.ErrNotFound):
		return SecondFactorState{}, err
	}
	return st, nil
}
