// Package fuzzcheck keeps fuzz targets honest: every target must have a
// checked-in seed corpus, and the corpora are written by one generator.
//
// A fuzz target whose seed directory is empty still "passes" while testing
// nothing it was meant to; RequireCorpus turns that into a failure.
package fuzzcheck

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// RequireCorpus fails the fuzz test f unless testdata/fuzz/<f.Name()> holds
// at least one seed file.
func RequireCorpus(f *testing.F) {
	f.Helper()
	dir := filepath.Join("testdata", "fuzz", f.Name())
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatalf("seed corpus %s is missing (%v); regenerate it with `make testdata`", dir, err)
	}
	n := 0
	for _, e := range entries {
		if e.Type().IsRegular() {
			n++
		}
	}
	if n == 0 {
		f.Fatalf("seed corpus %s is empty; regenerate it with `make testdata`", dir)
	}
}

// Encode renders values in the "go test fuzz v1" corpus file format. It
// supports the argument types this project's fuzz targets take.
func Encode(values ...any) ([]byte, error) {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		case int:
			fmt.Fprintf(&b, "int(%d)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%d)\n", v)
		case uint16:
			fmt.Fprintf(&b, "uint16(%d)\n", v)
		case uint32:
			fmt.Fprintf(&b, "uint32(%d)\n", v)
		case uint64:
			fmt.Fprintf(&b, "uint64(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%t)\n", v)
		default:
			return nil, fmt.Errorf("fuzzcheck: unsupported seed type %T", v)
		}
	}
	return []byte(b.String()), nil
}

// WriteSeed writes one seed file named name into dir/testdata/fuzz/target,
// creating the directory as needed.
func WriteSeed(pkgDir, target, name string, values ...any) error {
	data, err := Encode(values...)
	if err != nil {
		return err
	}
	dir := filepath.Join(pkgDir, "testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), data, 0o644)
}

// ReadBytesSeed returns the first []byte value of the seed file
// testdata/fuzz/target/name.
func ReadBytesSeed(target, name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, name))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "[]byte("); ok {
			s, err := strconv.Unquote(strings.TrimSuffix(v, ")"))
			if err != nil {
				return nil, fmt.Errorf("fuzzcheck: %s/%s: %w", target, name, err)
			}
			return []byte(s), nil
		}
	}
	return nil, fmt.Errorf("fuzzcheck: %s/%s holds no []byte value", target, name)
}

// CheckGenerated runs generate into a temporary tree and requires every
// file it writes to match the committed file at the same path under repo,
// byte for byte, and every committed file under each of the owned
// folders to be one it still writes. So generated vectors and corpora can
// be neither stale nor hand-edited. regen is the command to suggest.
func CheckGenerated(t *testing.T, repo string, generate func(root string) error, regen string, owned ...string) {
	t.Helper()
	tmp := t.TempDir()
	if err := generate(tmp); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := filepath.WalkDir(tmp, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tmp, path)
		want, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(repo, rel))
		switch {
		case err != nil:
			t.Errorf("%s: generated but not committed (%v); run %s", rel, err, regen)
		case !bytes.Equal(got, want):
			t.Errorf("%s: committed file differs from the generator's output; run %s", rel, regen)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the generator wrote nothing")
	}
	for _, dir := range owned {
		filepath.WalkDir(filepath.Join(repo, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(repo, path)
			if _, err := os.Stat(filepath.Join(tmp, rel)); err != nil {
				t.Errorf("%s: committed but no longer generated; run %s", rel, regen)
			}
			return nil
		})
	}
}

// CheckSeeds is the TestFuzzSeedsCurrent of a package whose seeds a test
// function writes (write(root) puts them under root/testdata/fuzz): with
// SEALNET_WRITE_SEEDS set it first writes them into the package, then it
// requires the committed seeds to be exactly what write makes
// (CheckGenerated). pkg is the package's path in the module, for the
// command it suggests.
func CheckSeeds(t *testing.T, pkg string, write func(root string) error) {
	t.Helper()
	if os.Getenv("SEALNET_WRITE_SEEDS") != "" {
		if err := write("."); err != nil {
			t.Fatal(err)
		}
	}
	CheckGenerated(t, ".", write, fmt.Sprintf("`SEALNET_WRITE_SEEDS=1 go test ./%s -run TestFuzzSeedsCurrent`", pkg), "testdata/fuzz")
}
