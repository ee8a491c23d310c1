// Package envconfig reads settings from environment variables. A Reader
// collects every problem it meets so that Load functions can report them all
// at once with errors.Join, each naming its variable.
package envconfig

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Reader reads typed values through a getenv function (os.Getenv in main,
// a map in tests) and remembers every malformed value.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// New returns a Reader over getenv.
func New(getenv func(string) string) *Reader {
	return &Reader{getenv: getenv}
}

// Err returns every problem met so far, joined, or nil.
func (r *Reader) Err() error {
	return errors.Join(r.errs...)
}

// Fail records a problem with the named variable.
func (r *Reader) Fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// String returns the variable's value, or def when it is unset or empty.
func (r *Reader) String(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// List returns the comma-separated values of the variable, or def.
func (r *Reader) List(name string, def []string) []string {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	var out []string
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Int returns the variable as an integer, or def.
func (r *Reader) Int(name string, def int) int {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.Fail(name, "%q is not an integer", v)
		return def
	}
	return n
}

// Bool returns the variable as a boolean (1/0, true/false, yes/no), or def.
func (r *Reader) Bool(name string, def bool) bool {
	v := strings.ToLower(r.String(name, ""))
	switch v {
	case "":
		return def
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	r.Fail(name, "%q is not a boolean", v)
	return def
}

// Duration returns the variable as a Go duration ("5s", "250ms"), or def.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.Fail(name, "%q is not a duration like 5s or 250ms", v)
		return def
	}
	return d
}

// Bytes returns the variable as a byte count: a plain integer or one with a
// KiB, MiB or GiB (or KB, MB, GB, meaning the same powers of two) suffix.
func (r *Reader) Bytes(name string, def int64) int64 {
	v := r.String(name, "")
	if v == "" {
		return def
	}
	n, err := ParseBytes(v)
	if err != nil {
		r.Fail(name, "%v", err)
		return def
	}
	return n
}

// ParseBytes parses "1048576", "512KiB", "50MiB" or "2GB" into bytes.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	}
	lower := strings.ToLower(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			lower = strings.TrimSpace(strings.TrimSuffix(lower, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(lower, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a byte size like 1048576 or 50MiB", s)
	}
	return n * mult, nil
}
