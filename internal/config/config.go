// Package config loads the daemons' TOML configuration files strictly:
// unknown keys are errors that name the key, so a typo never silently
// falls back to a default.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ErrUnknownKey is wrapped by Load when the file has a key the daemon does
// not know.
var ErrUnknownKey = errors.New("unknown configuration key")

// maxFileSize bounds a configuration file.
const maxFileSize = 1 << 20

// Load decodes the TOML file at path into v (a pointer to a struct with
// `toml` tags), refusing unknown keys.
func Load(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return fmt.Errorf("read configuration %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return fmt.Errorf("configuration %s is larger than %d bytes", path, maxFileSize)
	}
	if err := Decode(string(data), v); err != nil {
		return fmt.Errorf("configuration %s: %w", path, err)
	}
	return nil
}

// LoadValid reads the file at path into a new T and validates it: the one
// step every daemon takes at start.
func LoadValid[T any, P interface {
	*T
	Validate() error
}](path string) (*T, error) {
	var v T
	if err := Load(path, &v); err != nil {
		return nil, err
	}
	if err := P(&v).Validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

// Default sets *p to v if *p is the zero value: how Validate methods fill
// in defaults.
func Default[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Decode decodes TOML text into v, refusing unknown keys.
func Decode(text string, v any) error {
	md, err := toml.Decode(text, v)
	if err != nil {
		return err
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String()
		}
		return fmt.Errorf("%w: %s", ErrUnknownKey, strings.Join(keys, ", "))
	}
	return nil
}

// Duration is a time.Duration written in TOML as a string ("20m", "1.5s").
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Encode writes v as TOML (for generated configuration files).
func Encode(w io.Writer, v any) error { return toml.NewEncoder(w).Encode(v) }
