package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedCorporaAreCurrent regenerates the corpora into a temporary
// directory and requires the committed ones to match byte for byte, with
// nothing missing and nothing left over.
func TestCommittedCorporaAreCurrent(t *testing.T) {
	tmp := t.TempDir()
	if err := run(tmp); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join("..", "..")
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
		got, err := os.ReadFile(filepath.Join(pkg, rel))
		if err != nil {
			t.Errorf("%s: generated but not committed (%v); run `go generate ./mixnet/directory`", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: committed file differs from the generator's output; run `go generate ./mixnet/directory`", rel)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d files generated", n)
	}
	filepath.WalkDir(filepath.Join(pkg, "testdata", "fuzz"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(pkg, path)
		if _, err := os.Stat(filepath.Join(tmp, rel)); err != nil {
			t.Errorf("%s: committed but no longer generated", rel)
		}
		return nil
	})
}
