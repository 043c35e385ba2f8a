package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Some corpora are built from a package's unexported encoders (the
// client's vault records, the pcap reader's framing, the authority's
// descriptor lists), which a generator outside the package cannot call
// without widening the package's API for tests. Those packages write
// their seeds in a test function and hold them with fuzzcheck.CheckSeeds;
// the generator finds every such package and runs that test in write
// mode, so one command still regenerates everything.

var checkSeedsCall = regexp.MustCompile(`fuzzcheck\.CheckSeeds\(t, "([^"]+)"`)

// seedWritingPackages returns the module paths (relative to root) of the
// packages whose tests call fuzzcheck.CheckSeeds.
func seedWritingPackages(root string) ([]string, error) {
	var pkgs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range checkSeedsCall.FindAllSubmatch(b, -1) {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			if got := filepath.ToSlash(rel); got != string(m[1]) {
				return fmt.Errorf("%s names its package %q; it is %q", path, m[1], got)
			}
			pkgs = append(pkgs, string(m[1]))
		}
		return nil
	})
	slices.Sort(pkgs)
	return slices.Compact(pkgs), err
}

// writePackageSeeds runs TestFuzzSeedsCurrent of each package in write
// mode (SEALNET_WRITE_SEEDS=1).
func writePackageSeeds(root string, pkgs []string) error {
	args := []string{"test", "-count=1", "-run", "^TestFuzzSeedsCurrent$"}
	for _, p := range pkgs {
		args = append(args, "./"+p)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SEALNET_WRITE_SEEDS=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("writing the seeds of %s: %w\n%s", strings.Join(pkgs, ", "), err, out.Bytes())
	}
	return nil
}
