package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Getenv looks up an environment variable; the bool distinguishes unset from
// set-to-empty (DOCS_URL= disables the docs).
type Getenv func(key string) (string, bool)

// usageError is a command-line mistake: exit code 2 and the usage text.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitCode maps an error returned by run to the process exit status.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

const usage = `permiso - authentication and authorization server

Usage:
  permiso [--env-file FILE] [command] [flags]

Commands:
  serve                     run the HTTP server (default)
  migrate up|down [N]|status
                            apply, revert (default 1) or list migrations
  create-admin --username U --email E [--password-stdin]
                            create the first administrator (password from
                            stdin or an interactive prompt, never argv)
  check                     connect to the database and Redis and report
  keys rotate               new signing key (RS256/ES256/EdDSA); old keys keep
                            verifying until their tokens expire
  sessions revoke-all [--user ID]
                            revoke every session and token (incident response)
  mfa rekey                 re-seal second-factor secrets under the current
                            MFA_ENCRYPTION_KEY
  backup --out FILE         SQLite: consistent online copy; PostgreSQL: pg_dump
  import --from DATABASE_URL [--dry-run]
                            carry the original service's users, roles, scopes
                            and service clients over (not sessions)
  health [--url URL]        probe a running server (default: /health/live on
                            127.0.0.1:$PORT); exit 0 when it answers 2xx
  version                   print the version

A command's flags may come before or after its words ("sessions revoke-all
--user ID" or "sessions --user ID revoke-all"); "--" ends the flags.
Configuration comes from the environment, then .env (or --env-file), then
defaults; see README.md. Run "permiso COMMAND --help" for a command's flags.
`

// run is the whole program: it parses args, loads configuration from getenv
// and executes one subcommand. It returns instead of exiting so tests can
// call it.
func run(ctx context.Context, args []string, getenv Getenv, stdin io.Reader, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet("permiso", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	envFile := global.String("env-file", "", "read configuration from this file instead of ./.env")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return usageError{err.Error() + ` (run "permiso --help" for the usage)`}
	}
	args = global.Args()
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	// The global --env-file may also follow the command.
	args, after, err := takeEnvFile(args)
	if err != nil {
		return err
	}
	if after != "" {
		*envFile = after
	}
	env := &environment{getenv: getenv, envFile: *envFile, stderr: stderr}
	if c, ok := commands[cmd]; ok {
		return c(ctx, env, args, stdout)
	}
	switch cmd {
	case "create-admin":
		return cmdCreateAdmin(ctx, env, args, stdin, stdout)
	case "version", "--version":
		return cmdVersion(args, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf(`unknown command %q (run "permiso --help" for the commands)`, cmd)}
	}
}

// commands are the subcommands that start from the environment and read
// no standard input, by name; run dispatches the others itself.
var commands = map[string]func(ctx context.Context, env *environment, args []string, stdout io.Writer) error{
	"serve":    cmdServe,
	"migrate":  cmdMigrate,
	"check":    cmdCheck,
	"backup":   cmdBackup,
	"import":   cmdImport,
	"keys":     cmdKeys,
	"sessions": cmdSessions,
	"health":   cmdHealth,
	"mfa":      cmdMFA,
}

// takeEnvFile removes a global --env-file FILE (or -env-file, or
// --env-file=FILE) from a command's arguments, up to a "--", and returns
// the rest and the file ("" when absent).
func takeEnvFile(args []string) (rest []string, file string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(rest, args[i:]...), file, nil
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "env-file" {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, "", usageError{"flag needs an argument: --env-file"}
			}
			i++
			value = args[i]
		}
		file = value
	}
	return rest, file, nil
}

// flagSet is a subcommand's flags with its synopsis, which its --help
// and its usage errors show.
type flagSet struct {
	*flag.FlagSet
	synopsis string
}

// newFlagSet returns a flag set for a subcommand whose --help prints to out.
// Parse it with parse (or parseFlags), never with its own Parse.
func newFlagSet(name, synopsis string, out io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: permiso %s\n", synopsis)
		fs.PrintDefaults()
	}
	return &flagSet{FlagSet: fs, synopsis: synopsis}
}

// parse parses the subcommand's flags (parseFlags) and checks that its
// positional words are exactly words: none when words is empty ("check
// takes no arguments"), else those ("keys: want \"keys rotate\"").
// --help makes help true and err nil.
func (fs *flagSet) parse(args []string, words ...string) (help bool, err error) {
	if help, err := parseFlags(fs.FlagSet, args); help || err != nil {
		return help, err
	}
	switch {
	case slices.Equal(fs.Args(), words):
		return false, nil
	case len(words) == 0:
		return false, usageError{fmt.Sprintf("%s takes no arguments: unexpected argument %q (usage: permiso %s)", fs.Name(), fs.Arg(0), fs.synopsis)}
	default:
		return false, usageError{fmt.Sprintf("%s: want %q", fs.Name(), fs.synopsis)}
	}
}

// open parses the subcommand's command line (parse) and then opens the
// app with open (environment.open or environment.openMigrated). After
// --help, or on a mistake, the app is nil; the caller closes one it gets.
func (fs *flagSet) open(ctx context.Context, args []string, open func(context.Context) (*app, error), words ...string) (*app, error) {
	if help, err := fs.parse(args, words...); help || err != nil {
		return nil, err
	}
	return open(ctx)
}

// parseFlags parses a subcommand's flags wherever they stand among its
// positional words: "sessions revoke-all --user ID" and "sessions --user
// ID revoke-all" are the same command (Go's flag package alone stops at
// the first word). A "--" ends the flags; everything after it is a word.
// The words are then fs.Args(), in their order. --help (-h, -help) prints
// the usage and makes the command return nil; any other mistake is a
// one-line usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	flags, words, dangling := splitFlags(fs, args)
	if !dangling {
		flags = append(append(flags, "--"), words...)
	}
	// With a dangling flag the words are left out: flag reports the
	// missing value rather than take the "--" as one.
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, usageError{strings.TrimSpace(err.Error())}
	}
	return false, nil
}

// splitFlags separates the flags of fs (each with its value when the value
// is the next argument) from the positional words, up to a "--". An
// argument is a flag when it starts with "-" and is not "-" alone (flag's
// rule); one fs does not define stays with the flags, for fs.Parse to
// report. A flag that is not boolean and has no "=value" takes the next
// argument as its value, whatever it looks like, as flag.Parse does;
// dangling reports such a flag at the very end, with no value.
func splitFlags(fs *flag.FlagSet, args []string) (flags, words []string, dangling bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(words, args[i+1:]...), false
		}
		if len(a) < 2 || a[0] != '-' {
			words = append(words, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		if hasValue || f == nil || isBoolFlag(f) {
			continue
		}
		if i+1 >= len(args) {
			return flags, words, true
		}
		i++
		flags = append(flags, args[i])
	}
	return flags, words, false
}

// isBoolFlag reports whether f takes no value (flag.Bool and the like).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
