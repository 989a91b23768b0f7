// Package mfa holds the second factors of multi-factor authentication
// (docs/mfa.md): the Factor interface every factor implements, TOTP
// (RFC 6238) as its first implementation, the AES-GCM box that keeps
// factor secrets encrypted at rest, and recovery codes.
//
// It knows nothing of storage, HTTP or sessions: the identity and OAuth
// services call it with secrets they read from permiso.MFAStore and
// record which code was used once through the shared-state layer.
package mfa
