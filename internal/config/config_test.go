package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type sample struct {
	Name   string   `toml:"name"`
	Period Duration `toml:"period"`
	Inner  struct {
		Rate float64 `toml:"rate"`
	} `toml:"inner"`
}

func TestDecodeStrict(t *testing.T) {
	var s sample
	if err := Decode("name = \"x\"\nperiod = \"20m\"\n[inner]\nrate = 0.5\n", &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "x" || s.Period.D() != 20*time.Minute || s.Inner.Rate != 0.5 {
		t.Fatalf("decoded %+v", s)
	}
	err := Decode("name = \"x\"\n[inner]\nrat = 0.5\n", &s)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "inner.rat") {
		t.Fatalf("typo: got %v, want ErrUnknownKey naming inner.rat", err)
	}
	if err := Decode("period = \"soon\"\n", &s); err == nil {
		t.Fatal("bad duration accepted")
	}
}

func TestLoadAndEncode(t *testing.T) {
	var s sample
	s.Name, s.Period, s.Inner.Rate = "y", Duration(90*time.Second), 2
	var buf bytes.Buffer
	if err := Encode(&buf, s); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var back sample
	if err := Load(path, &back); err != nil {
		t.Fatal(err)
	}
	if back != s {
		t.Fatalf("round trip gave %+v", back)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte("#"), maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Load(path, &back); err == nil {
		t.Fatal("oversized file accepted")
	}
	if err := Load(filepath.Join(t.TempDir(), "missing.toml"), &back); err == nil {
		t.Fatal("missing file accepted")
	}
}
