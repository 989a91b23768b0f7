package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// RateLimit is a request budget: at most Count requests per Period. The
// zero RateLimit is disabled (an empty RATE_LIMIT_* value).
type RateLimit struct {
	Count  int
	Period time.Duration
}

// Disabled reports whether the limit is off.
func (r RateLimit) Disabled() bool { return r.Count <= 0 || r.Period <= 0 }

// String formats r as ParseRateLimit reads it ("5/minute", "10/2 hours"),
// or "" when disabled.
func (r RateLimit) String() string {
	if r.Disabled() {
		return ""
	}
	units := []struct {
		name string
		d    time.Duration
	}{{"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second}}
	for _, u := range units {
		if r.Period%u.d == 0 {
			n := r.Period / u.d
			if n == 1 {
				return fmt.Sprintf("%d/%s", r.Count, u.name)
			}
			return fmt.Sprintf("%d/%d %ss", r.Count, n, u.name)
		}
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Period)
}

// Limits on rate-limit values, so that no product overflows.
const (
	maxRateCount      = 1_000_000_000
	maxRateMultiplier = 1_000_000
)

var rateUnits = map[string]time.Duration{
	"second": time.Second, "seconds": time.Second,
	"minute": time.Minute, "minutes": time.Minute,
	"hour": time.Hour, "hours": time.Hour,
	"day": 24 * time.Hour, "days": 24 * time.Hour,
}

// ParseRateLimit reads "N/unit" or "N/M unit" where unit is second, minute,
// hour or day (singular or plural, any case), e.g. "5/minute", "3/hour",
// "100/15 minutes". N must be at least 1. An empty (or all-space) string
// is the disabled zero RateLimit.
func ParseRateLimit(s string) (RateLimit, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return RateLimit{}, nil
	}
	countStr, per, ok := strings.Cut(s, "/")
	if !ok {
		return RateLimit{}, errors.New(`expected "N/second", "N/minute", "N/hour" or "N/day"`)
	}
	count, err := strconv.Atoi(strings.TrimSpace(countStr))
	if err != nil || count < 0 || count > maxRateCount {
		return RateLimit{}, fmt.Errorf("%q is not a request count", strings.TrimSpace(countStr))
	}
	if count == 0 {
		return RateLimit{}, errors.New("the count must be at least 1 (leave the value empty to disable the limit)")
	}
	per = strings.TrimSpace(per)
	mult := 1
	if i := strings.IndexFunc(per, func(r rune) bool { return r < '0' || r > '9' }); i > 0 {
		mult, err = strconv.Atoi(per[:i])
		if err != nil || mult < 1 || mult > maxRateMultiplier {
			return RateLimit{}, fmt.Errorf("%q is not a valid period", per)
		}
		per = strings.TrimSpace(per[i:])
	}
	unit, ok := rateUnits[strings.ToLower(per)]
	if !ok {
		return RateLimit{}, fmt.Errorf("%q is not a unit (second, minute, hour or day)", per)
	}
	// A window longer than a year is a mistake, and a large multiplier of
	// days would overflow time.Duration (found by FuzzParseRateLimit).
	if time.Duration(mult) > maxRatePeriod/unit {
		return RateLimit{}, fmt.Errorf("%q is longer than a year", strings.TrimSpace(strings.SplitN(s, "/", 2)[1]))
	}
	return RateLimit{Count: count, Period: time.Duration(mult) * unit}, nil
}

// maxRatePeriod is the longest rate-limit window accepted.
const maxRatePeriod = 366 * 24 * time.Hour

// parseBool reads true/false, 1/0, yes/no, on/off in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, bad("is not a boolean (true/false, 1/0, yes/no, on/off)")
}

// parseInt reads a decimal integer.
func parseInt(s string) (int, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
		return 0, bad("is not a whole number")
	}
	return int(n), nil
}

// parseDuration reads a whole number of units (for the *_MINUTES, *_DAYS,
// *_SECONDS variables) and refuses values that overflow a time.Duration.
func parseDuration(s string, unit time.Duration) (time.Duration, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, bad("is not a whole number of %s", unitName(unit))
	}
	if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
		return 0, bad("is too large")
	}
	return time.Duration(n) * unit, nil
}

func unitName(unit time.Duration) string {
	switch unit {
	case time.Millisecond:
		return "milliseconds"
	case time.Second:
		return "seconds"
	case time.Minute:
		return "minutes"
	case 24 * time.Hour:
		return "days"
	}
	return unit.String()
}

// parseList reads a comma-separated list (items trimmed, empty items
// dropped) or, when the value starts with "[", a JSON array of strings.
func parseList(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var raw []string
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			return nil, bad("is not a JSON array of strings")
		}
		out := make([]string, 0, len(raw))
		for _, v := range raw {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
		return out, nil
	}
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// parseLogLevel reads Python-style level names in any case.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	case "CRITICAL", "FATAL":
		return LevelCritical, nil
	}
	return 0, bad("is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
}

// parsePrefixes reads CIDRs and bare IPs (as /32 or /128), masked.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	items, err := parseList(s)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(items))
	var bad []string
	for _, it := range items {
		var p netip.Prefix
		if strings.Contains(it, "/") {
			p, err = netip.ParsePrefix(it)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(it); err == nil {
				if a.Zone() != "" {
					err = errors.New("zone")
				} else {
					p = netip.PrefixFrom(a, a.BitLen())
				}
			}
		}
		if err != nil {
			bad = append(bad, strconv.Quote(it))
			continue
		}
		out = append(out, p.Masked())
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s is not an IP address or CIDR", strings.Join(bad, ", "))
	}
	return out, nil
}

// algorithms maps JWT_ALGORITHM, upper-cased, to its canonical spelling.
var algorithms = map[string]string{
	"HS256": "HS256", "HS384": "HS384", "HS512": "HS512",
	"RS256": "RS256", "ES256": "ES256", "EDDSA": "EdDSA",
}

// environments accepted in ENVIRONMENT.
var environments = []string{EnvDevelopment, EnvStaging, EnvProduction, EnvTest}
