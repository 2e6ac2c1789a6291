package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a string: Go's syntax ("10s",
// "1h30m") plus whole days ("30d", "1d12h"). Negative durations are refused.
type Duration time.Duration

// UnmarshalTOML decodes a duration string; the integer 0 is accepted too.
func (d *Duration) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		p, err := parseDuration(v)
		if err != nil {
			return err
		}
		*d = p
		return nil
	case int64:
		if v == 0 {
			*d = 0
			return nil
		}
	}
	return fmt.Errorf(`must be a duration like "10s", not %s`, typeName(v))
}

// String formats d in whole days ("30d") when it is a positive number of
// days, else like time.Duration.
func (d Duration) String() string {
	const day = Duration(24 * time.Hour)
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return time.Duration(d).String()
}

func parseDuration(s string) (Duration, error) {
	bad := fmt.Errorf("invalid duration %q", s)
	const maxDays = math.MaxInt64 / int64(24*time.Hour)
	var days int64
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil || n > uint64(maxDays) {
			return 0, bad
		}
		days, rest = int64(n), s[i+1:]
		if rest == "" {
			return Duration(days * int64(24*time.Hour)), nil
		}
	}
	p, err := time.ParseDuration(rest)
	if err != nil || p < 0 || rest[0] == '-' || rest[0] == '+' {
		return 0, bad
	}
	total := days*int64(24*time.Hour) + int64(p)
	if total < 0 { // overflow
		return 0, bad
	}
	return Duration(total), nil
}

// Size is a number of bytes, written as an integer or a string with a unit:
// B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024),
// e.g. "50GiB", "2MB", "1.5GiB". Units are case-insensitive.
type Size uint64

var sizeUnits = []struct {
	name string
	mult uint64
}{
	{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"kB", 1e3}, {"B", 1},
}

// UnmarshalTOML decodes a size string or a non-negative integer.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		p, err := parseSize(v)
		if err != nil {
			return err
		}
		*s = p
		return nil
	case int64:
		if v < 0 {
			return fmt.Errorf("invalid size %d", v)
		}
		*s = Size(v)
		return nil
	}
	return fmt.Errorf(`must be a size like "2GiB", not %s`, typeName(v))
}

// String formats s with the largest unit that divides it, e.g. "50GiB".
func (s Size) String() string {
	for _, u := range sizeUnits {
		if s != 0 && uint64(s)%u.mult == 0 {
			return strconv.FormatUint(uint64(s)/u.mult, 10) + u.name
		}
	}
	return "0"
}

func parseSize(s string) (Size, error) {
	bad := fmt.Errorf("invalid size %q", s)
	t := strings.TrimSpace(s)
	end := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(t)
	}
	num, unit := t[:end], strings.TrimSpace(t[end:])
	mult := uint64(1)
	if unit != "" {
		mult = 0
		for _, u := range sizeUnits {
			if strings.EqualFold(unit, u.name) {
				mult = u.mult
			}
		}
		if mult == 0 {
			return 0, bad
		}
	}
	if n, err := strconv.ParseUint(num, 10, 64); err == nil {
		if n > math.MaxUint64/mult {
			return 0, bad
		}
		return Size(n * mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || !strings.Contains(num, ".") || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, bad
	}
	b := f * float64(mult)
	if b >= math.MaxUint64 { // float64(MaxUint64) is 2^64
		return 0, bad
	}
	return Size(b), nil
}

// ID is a Janus room, mountpoint or feed id: a number, or a string when
// Janus runs with string_ids. The zero ID is "not set".
type ID struct {
	Num uint64
	Str string
}

// IsSet reports whether the id was given.
func (id ID) IsSet() bool { return id.Num != 0 || id.Str != "" }

// String returns the string id, or the number in decimal.
func (id ID) String() string {
	if id.Str != "" {
		return id.Str
	}
	return strconv.FormatUint(id.Num, 10)
}

// JSON returns the id as it goes into a Janus request: the string, or the number.
func (id ID) JSON() any {
	if id.Str != "" {
		return id.Str
	}
	return id.Num
}

// UnmarshalTOML decodes a positive integer or a non-empty string.
func (id *ID) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v > 0 {
			*id = ID{Num: uint64(v)}
			return nil
		}
	case string:
		if v != "" {
			*id = ID{Str: v}
			return nil
		}
	}
	return fmt.Errorf("must be a positive integer or a non-empty string, not %s", typeName(v))
}

// Feeds is a VideoRoom recv bridge's choice of publishers: "all" (follow
// publishers as they come and go) or a list of feed ids.
type Feeds struct {
	All bool
	IDs []ID
}

// UnmarshalTOML decodes "all" or an array of feed ids.
func (f *Feeds) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		if v == "all" {
			*f = Feeds{All: true}
			return nil
		}
	case []any:
		ids := make([]ID, len(v))
		for i, e := range v {
			if err := ids[i].UnmarshalTOML(e); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		*f = Feeds{IDs: ids}
		return nil
	}
	return fmt.Errorf(`must be "all" or a list of feed ids, not %s`, typeName(v))
}

// typeName describes a decoded TOML value for messages: the value itself for
// numbers and strings, its type for anything else.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a datetime"
}
