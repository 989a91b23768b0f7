package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/commonpw"
	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/internal/mapslice"
)

func cmdCreateAdmin(ctx context.Context, env *environment, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlagSet("create-admin", "create-admin --username U --email E [--password-stdin]", stdout)
	username := fs.String("username", "", "administrator username (required)")
	email := fs.String("email", "", "administrator email (required)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input instead of prompting")
	if help, err := parseFlags(fs.FlagSet, args); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"create-admin: the password is never taken from arguments; use --password-stdin or the prompt"}
	}
	u, e := permiso.NormalizeUsername(*username), permiso.NormalizeEmail(*email)
	if u == "" || e == "" {
		return usageError{"create-admin: --username and --email are required"}
	}
	if !strings.Contains(e, "@") {
		return fmt.Errorf("create-admin: %q is not an email address", *email)
	}

	a, err := env.openMigrated(ctx)
	if err != nil {
		return err
	}
	defer a.Close()
	cfg, db := a.cfg, a.db

	// Refuse before asking for a password when the user exists.
	if err := adminExists(ctx, db, u, e); err != nil {
		return err
	}
	password, err := readPassword(*fromStdin, stdin, stdout)
	if err != nil {
		return err
	}
	if problems := passwordPolicy(cfg).Check(password, u); len(problems) > 0 {
		msgs := mapslice.Map(problems, func(p permiso.FieldError) string { return p.Message })
		return fmt.Errorf("create-admin: password rejected: %s", strings.Join(msgs, "; "))
	}
	hasher := newHasher(cfg, 1)
	hash, err := hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("create-admin: hash password: %w", err)
	}
	adminRole, err := db.GetRoleByName(ctx, permiso.RoleAdmin)
	if err != nil {
		return fmt.Errorf("create-admin: role %q: %w", permiso.RoleAdmin, err)
	}
	now := time.Now().UTC()
	created, err := db.CreateUser(ctx, permiso.User{
		Username:          u,
		Email:             e,
		PasswordHash:      hash,
		IsActive:          true,
		IsVerified:        true,
		IsSuperuser:       true,
		PasswordChangedAt: now,
	}, []uuid.UUID{adminRole.ID})
	if errors.Is(err, permiso.ErrAlreadyExists) {
		return fmt.Errorf("create-admin: a user with username %q or email %q already exists; nothing changed", u, e)
	}
	if err != nil {
		return fmt.Errorf("create-admin: %w", err)
	}
	fmt.Fprintf(stdout, "created administrator %q (%s) with role admin\n", created.Username, created.ID)
	return nil
}

// adminExists is what makes create-admin idempotent (README, "Commands": a
// second run "says it exists and exits non-zero without changing
// anything"): when the username or the email is taken it returns an error
// that says which case it is, this very administrator already existing,
// or another user holding the name or address, and nothing is written.
func adminExists(ctx context.Context, db permiso.UserStore, username, email string) error {
	byName, nameErr := db.GetUserByUsername(ctx, username)
	byEmail, emailErr := db.GetUserByEmail(ctx, email)
	for _, err := range []error{nameErr, emailErr} {
		if err != nil && !errors.Is(err, permiso.ErrNotFound) {
			return fmt.Errorf("create-admin: %w", err)
		}
	}
	switch {
	case nameErr != nil && emailErr != nil:
		return nil
	case nameErr == nil && emailErr == nil && byName.ID == byEmail.ID &&
		byName.IsActive && byName.IsSuperuser && byName.HasRole(permiso.RoleAdmin):
		return fmt.Errorf("create-admin: administrator %q <%s> already exists; nothing changed", byName.Username, byName.Email)
	}
	return fmt.Errorf("create-admin: a user with username %q or email %q already exists and is not this active administrator; nothing changed", username, email)
}

// readPassword reads the password from stdin (--password-stdin: the first
// line) or prompts twice on the terminal without echo.
func readPassword(fromStdin bool, stdin io.Reader, stdout io.Writer) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("create-admin: read password: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("create-admin: empty password on standard input")
		}
		return line, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{"create-admin: standard input is not a terminal; pass the password with --password-stdin"}
	}
	fmt.Fprint(stdout, "Password: ")
	p1, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stdout)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stdout, "Repeat password: ")
	p2, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stdout)
	if err != nil {
		return "", err
	}
	if string(p1) != string(p2) {
		return "", errors.New("create-admin: the passwords do not match")
	}
	return string(p1), nil
}

// passwordPolicy returns the PASSWORD_* rules, with the common-password
// list (package commonpw). Every path that sets a password uses it:
// create-admin, the API (registration, changes, resets) and the expired-
// password change of the OAuth core.
func passwordPolicy(cfg config.Config) permiso.PasswordPolicy {
	return permiso.PasswordPolicy{
		MinLength:        cfg.PasswordMinLength,
		MaxLength:        cfg.PasswordMaxLength,
		RequireUppercase: cfg.PasswordRequireUppercase,
		RequireLowercase: cfg.PasswordRequireLowercase,
		RequireDigits:    cfg.PasswordRequireDigits,
		RequireSpecial:   cfg.PasswordRequireSpecial,
		Common:           commonpw.Contains,
	}
}
