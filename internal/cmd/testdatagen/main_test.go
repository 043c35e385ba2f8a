package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedTestdataIsCurrent regenerates everything into a temporary
// tree and requires it to match the committed files byte for byte, so the
// vectors and corpora can be neither stale nor hand-edited.
func TestCommittedTestdataIsCurrent(t *testing.T) {
	tmp := t.TempDir()
	if err := run(tmp); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join("..", "..", "..")
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
		if err != nil {
			t.Errorf("%s: generated but not committed (%v); run `make testdata`", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: committed file differs from the generator's output; run `make testdata`", rel)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d files generated", n)
	}
	// And nothing committed under a generated corpus is left over.
	for _, dir := range []string{"mixnet/testdata/fuzz", "internal/lioness/testdata/fuzz", "mixnet/link/testdata/fuzz"} {
		filepath.WalkDir(filepath.Join(repo, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(repo, path)
			if _, err := os.Stat(filepath.Join(tmp, rel)); err != nil {
				t.Errorf("%s: committed but no longer generated", rel)
			}
			return nil
		})
	}
}
