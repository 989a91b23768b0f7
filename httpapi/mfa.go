package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso/identity"
	"github.com/permiso/permiso/mfa"
)

// Multi-factor enrollment (docs/mfa.md): the signed-in user's own routes
// under /users/me/mfa and an administrator's reset. Every rule is the
// identity service's; the handlers parse and answer. No secret or code is
// logged: bodies are never logged, and errors name no input.

type mfaTOTPStatus struct {
	Enabled     bool       `json:"enabled"`
	ConfirmedAt *time.Time `json:"confirmed_at"`
}

type mfaStatusResponse struct {
	TOTP              mfaTOTPStatus `json:"totp"`
	RecoveryCodesLeft int           `json:"recovery_codes_left"`
	Required          bool          `json:"required"`
}

type totpEnrollmentResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
	QRSVG      string `json:"qr_svg"`
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

type mfaCodeBody struct {
	Code string `json:"code"`
}

type mfaDisableBody struct {
	Password string `json:"password"`
	Code     string `json:"code"`
}

// handleMyMFA: GET /users/me/mfa.
func (s *server) handleMyMFA() http.Handler {
	return s.onMe(func(w http.ResponseWriter, r *http.Request, a identity.Actor, me uuid.UUID) error {
		st, err := s.ident.MFAStatus(r.Context(), a, me)
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, mfaStatusResponse{
			TOTP:              mfaTOTPStatus{Enabled: st.TOTPEnabled, ConfirmedAt: st.TOTPConfirmedAt},
			RecoveryCodesLeft: st.RecoveryCodesLeft,
			Required:          st.Required,
		})
	})
}

// handleBeginTOTP: POST /users/me/mfa/totp (201, a pending enrollment).
func (s *server) handleBeginTOTP() http.Handler {
	return s.onMe(func(w http.ResponseWriter, r *http.Request, a identity.Actor, me uuid.UUID) error {
		en, err := s.ident.BeginTOTP(r.Context(), a, me)
		if err != nil {
			return err
		}
		svg, err := mfa.QRSVG(en.URI)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return answer(w, http.StatusCreated, totpEnrollmentResponse{Secret: en.Secret, OTPAuthURI: en.URI, QRSVG: svg})
	})
}

// handleConfirmTOTP: POST /users/me/mfa/totp/confirm.
func (s *server) handleConfirmTOTP() http.Handler {
	return s.recoveryCodes(s.ident.ConfirmTOTP)
}

// handleRecoveryCodes: POST /users/me/mfa/recovery-codes.
func (s *server) handleRecoveryCodes() http.Handler {
	return s.recoveryCodes(s.ident.RegenerateRecoveryCodes)
}

// recoveryCodes answers a request of the caller with a code in the body
// by the new recovery codes that issue returns (not cached).
func (s *server) recoveryCodes(issue func(ctx context.Context, a identity.Actor, id uuid.UUID, code string) ([]string, error)) http.Handler {
	return s.onMe(func(w http.ResponseWriter, r *http.Request, a identity.Actor, me uuid.UUID) error {
		var b mfaCodeBody
		if _, err := decodeObject(r, &b); err != nil {
			return err
		}
		codes, err := issue(r.Context(), a, me, b.Code)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return answer(w, http.StatusOK, recoveryCodesResponse{RecoveryCodes: codes})
	})
}

// handleDisableTOTP: DELETE /users/me/mfa/totp with the password and a
// code (or a recovery code) in the body.
func (s *server) handleDisableTOTP() http.Handler {
	return s.onMe(func(w http.ResponseWriter, r *http.Request, a identity.Actor, me uuid.UUID) error {
		var b mfaDisableBody
		if _, err := decodeObject(r, &b); err != nil {
			return err
		}
		if err := s.ident.DisableTOTP(r.Context(), a, me, b.Password, b.Code); err != nil {
			return err
		}
		return noContent(w)
	})
}

// handleResetMFA: DELETE /users/{user_id}/mfa (admin:users, under the
// delegation rule).
func (s *server) handleResetMFA() http.Handler {
	return s.identityHandler(byID("user_id", "User", func(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
		if err := s.ident.ResetMFA(r.Context(), actor(r), id); err != nil {
			return err
		}
		return noContent(w)
	}))
}
