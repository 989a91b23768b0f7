package config

import (
	"fmt"
	"os"
	"strings"
)

// maxDotenv bounds the size of a .env file.
const maxDotenv = 4 << 20

// readDotenv reads a .env file. err is set when the file cannot be read
// (fs.ErrNotExist when missing); errs lists malformed lines, which are
// skipped.
func readDotenv(path string) (values map[string]string, warnings []string, errs []error, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, nil, err
	}
	if fi.IsDir() {
		return nil, nil, nil, fmt.Errorf("%s is a directory", path)
	}
	if fi.Size() > maxDotenv {
		return nil, nil, nil, fmt.Errorf("%s is larger than %d bytes", path, maxDotenv)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	values, warnings, errs = parseDotenv(string(b), path)
	return values, warnings, errs, nil
}

// parseDotenv parses the .env format that Docker Compose and python-dotenv
// share:
//
//	# comment
//	KEY=value            unquoted: trimmed; " #" starts a comment
//	export KEY=value     "export " is ignored
//	KEY="a \"b\"\n"      double quotes: \n \r \t \" \\ escapes, may span lines
//	KEY='literal'        single quotes: no escapes, may span lines
//	KEY=                 set to the empty string
//
// Values are literal: "$" has no special meaning (no ${VAR} expansion), so
// a secret containing "$" is read as written. A key set twice takes the
// last value, with a warning when the values differ. where names the file in messages.
func parseDotenv(src, where string) (map[string]string, []string, []error) {
	values := map[string]string{}
	firstLine := map[string]int{}
	var warnings []string
	var errs []error
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.TrimPrefix(src, "\ufeff")
	lineNo := 0
	for len(src) > 0 {
		var line string
		line, src, _ = strings.Cut(src, "\n")
		lineNo++
		start := lineNo
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(trimmed, "export"); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t")) {
			trimmed = strings.TrimSpace(rest)
		}
		key, raw, ok := strings.Cut(trimmed, "=")
		key = strings.TrimSpace(key)
		if !ok || !validKey(key) {
			errs = append(errs, fmt.Errorf("%s:%d: expected KEY=VALUE", where, start))
			continue
		}
		raw = strings.TrimLeft(raw, " \t")
		var value string
		if raw != "" && (raw[0] == '"' || raw[0] == '\'') {
			quote := raw[0]
			body := raw[1:]
			var closed bool
			var tail string
			// Extend over following lines until the closing quote.
			for {
				value, tail, closed = unquote(body, quote)
				if closed || len(src) == 0 {
					break
				}
				var next string
				next, src, _ = strings.Cut(src, "\n")
				lineNo++
				body += "\n" + next
			}
			if !closed {
				errs = append(errs, fmt.Errorf("%s:%d: %s: unterminated quoted value", where, start, key))
				continue
			}
			if t := strings.TrimSpace(tail); t != "" && !strings.HasPrefix(t, "#") {
				errs = append(errs, fmt.Errorf("%s:%d: %s: unexpected text after the closing quote", where, start, key))
				continue
			}
		} else {
			value = raw
			for i := 0; i < len(value); i++ {
				if value[i] == '#' && i > 0 && (value[i-1] == ' ' || value[i-1] == '\t') {
					value = value[:i]
					break
				}
			}
			value = strings.TrimSpace(value)
		}
		if first, dup := firstLine[key]; dup {
			if values[key] != value {
				warnings = append(warnings, fmt.Sprintf("%s: %s is set on lines %d and %d to different values; the last one wins", where, key, first, start))
			}
		} else {
			firstLine[key] = start
		}
		values[key] = value
	}
	return values, warnings, errs
}

// unquote reads a quoted value up to its closing quote; tail is what
// follows the quote.
func unquote(body string, quote byte) (value, tail string, closed bool) {
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == quote:
			return b.String(), body[i+1:], true
		case c == '\\' && quote == '"' && i+1 < len(body):
			i++
			switch body[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '$':
				b.WriteByte(body[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(body[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", false
}

// validKey reports whether k is a plausible variable name.
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c == '.' || c == '-' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
