package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Env looks up one environment variable; ok reports whether it is set
// (even to the empty string). os.LookupEnv is an Env; tests use MapEnv.
type Env func(key string) (value string, ok bool)

// MapEnv is an Env backed by a map.
func MapEnv(m map[string]string) Env {
	return func(key string) (string, bool) {
		v, ok := m[key]
		return v, ok
	}
}

// maxSecretFile bounds what a NAME_FILE may hold.
const maxSecretFile = 1 << 20

// layer is one source of values: the environment or the .env file.
type layer struct {
	get Env
	// where is shown in error messages ("" for the environment).
	where string
	// dir is the directory that relative NAME_FILE paths are resolved
	// against ("" for the working directory).
	dir string
}

// Load builds the configuration from env (the process environment; nil
// means an empty one), the .env file at envFile, and the defaults, in that
// order of precedence, then validates it (see Validate).
//
// envFile is the .env file to read ("" reads none). When envFileExplicit
// is false (the default "./.env"), a missing file is not an error; when it
// is true (--env-file), it is. Relative NAME_FILE paths given in the .env
// file are resolved against the file's directory.
//
// Load returns the warnings the caller should log (ignored variables,
// overrides, weak settings outside production) and, when anything is
// wrong, an Errors value listing every problem, one per line, each naming
// its variable. The Config must not be used when the error is non-nil.
func Load(env Env, envFile string, envFileExplicit bool) (Config, []string, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	var warnings []string
	var errs Errors

	layers := []layer{{get: env}}
	if envFile != "" {
		values, ws, fileErrs, err := readDotenv(envFile)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !envFileExplicit:
			// No .env: fine.
		case err != nil:
			errs = append(errs, fmt.Errorf("env file: %w", err))
		default:
			warnings = append(warnings, ws...)
			errs = append(errs, fileErrs...)
			layers = append(layers, layer{get: MapEnv(values), where: envFile, dir: filepath.Dir(envFile)})
		}
	}

	cfg := Defaults()
	set := map[string]bool{}
	var ignoredSet []string
	for _, s := range specs {
		v, where, found, err := lookup(layers, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !found {
			continue
		}
		if s.Ignored {
			ignoredSet = append(ignoredSet, s.Name)
			continue
		}
		set[s.Name] = true
		if err := s.set(&cfg, v); err != nil {
			errs = append(errs, wrapSetErr(s, v, where, err))
		}
	}
	if len(ignoredSet) > 0 {
		warnings = append(warnings, strings.Join(ignoredSet, ", ")+
			" ignored: permiso is one Go process that uses every CPU and needs no workers or restarts; run more instances behind the load balancer to scale out")
	}
	if !set["PUBLIC_URL"] {
		cfg.PublicURL = defaultPublicURL(cfg.Host, cfg.Port)
	}

	ws, verrs := cfg.check()
	warnings = append(warnings, ws...)
	errs = append(errs, verrs...)
	if len(errs) > 0 {
		sortErrors(errs)
		return cfg, warnings, errs
	}
	return cfg, warnings, nil
}

// lookup finds s's value in the first layer that sets it, directly or via
// NAME_FILE. For a variable whose empty value means "default", an empty
// value does not count as set, so a lower layer can still provide one.
func lookup(layers []layer, s spec) (value, where string, found bool, err error) {
	name, fileName := s.Name, s.Name+"_FILE"
	for _, l := range layers {
		v, ok := l.get(name)
		if ok && strings.TrimSpace(v) == "" && !s.keepEmpty {
			ok = false
		}
		path, fok := l.get(fileName)
		if fok && strings.TrimSpace(path) == "" {
			fok = false
		}
		if !fok {
			if ok {
				return v, l.where, true, nil
			}
			continue
		}
		if ok && v != "" {
			return "", "", false, varErr(name, "both %s and %s are set%s; use one", name, fileName, in(l.where))
		}
		path = strings.TrimSpace(path)
		if l.dir != "" && !filepath.IsAbs(path) {
			path = filepath.Join(l.dir, path)
		}
		v, err := readSecretFile(path)
		if err != nil {
			return "", "", false, &VarError{Var: fileName, Err: err}
		}
		if strings.TrimSpace(v) == "" && !s.keepEmpty {
			continue
		}
		return v, fileName + "=" + path, true, nil
	}
	return "", "", false, nil
}

// readSecretFile reads a NAME_FILE and removes one trailing newline.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	s := string(b)
	if strings.HasSuffix(s, "\r\n") {
		s = s[:len(s)-2]
	} else if strings.HasSuffix(s, "\n") {
		s = s[:len(s)-1]
	}
	return s, nil
}

// wrapSetErr names the variable, shows the value unless it is secret, and
// says where it came from when that was not the environment.
func wrapSetErr(s spec, v, where string, err error) error {
	msg := err.Error()
	var ve *valueError
	if errors.As(err, &ve) {
		shown := quote(strings.TrimSpace(v))
		if s.Secret {
			shown = "the value"
		}
		msg = shown + " " + msg
	}
	return &VarError{Var: s.Name, Err: errors.New(msg + in(where))}
}

func in(where string) string {
	if where == "" {
		return ""
	}
	return " (in " + where + ")"
}

// sortErrors orders problems as Variables lists their variables (a
// NAME_FILE problem goes with NAME); problems not about one variable, such
// as an unreadable env file, come first. The order within one variable is
// kept.
func sortErrors(errs Errors) {
	rank := func(err error) int {
		ve, ok := err.(*VarError)
		if !ok {
			return -1
		}
		name := ve.Var
		for i, s := range specs {
			if s.Name == name || s.Name+"_FILE" == name {
				return i
			}
		}
		return len(specs)
	}
	sort.SliceStable(errs, func(i, j int) bool { return rank(errs[i]) < rank(errs[j]) })
}
