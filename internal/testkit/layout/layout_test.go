package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/sealnet/sealnet/"

// graph maps each package of the module (path relative to the module) to
// the packages its non-test files import, directly or not: module
// packages by their relative path, others outside the standard library
// in full.
type graph map[string][]string

func loadGraph(t *testing.T) graph {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", mod+"...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	g := graph{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var deps []string
		for _, d := range f[1:] {
			switch first, _, _ := strings.Cut(d, "/"); {
			case strings.HasPrefix(d, mod):
				deps = append(deps, strings.TrimPrefix(d, mod))
			case strings.Contains(first, "."):
				deps = append(deps, d)
			} // the standard library is allowed everywhere
		}
		g[strings.TrimPrefix(f[0], mod)] = deps
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(g) < 20 {
		t.Fatalf("go list found %d packages; expected the whole module", len(g))
	}
	return g
}

func under(p string, prefixes ...string) bool {
	for _, pre := range prefixes {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}

// module reports whether a dependency in a graph is a module package.
func module(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// rule is one arrow docs/architecture.md forbids: a package matching from
// must not depend on a package that forbidden reports.
type rule struct {
	name      string
	from      func(string) bool
	forbidden func(dep string) bool
}

var rules = []rule{
	{
		name: "the floor depends on nothing above it",
		from: func(p string) bool {
			return under(p, "mixnet/link", "mixnet/mix") || p == "mixnet" || p == "mixnet/directory"
		},
		forbidden: func(d string) bool {
			return module(d) && !under(d, "mixnet", "internal/crypto", "internal/clock")
		},
	},
	{
		name: "the envelope stores, listens and dials nothing",
		from: func(p string) bool { return p == "sender/seal" },
		forbidden: func(d string) bool {
			return module(d) && d != "sender/seal" && !under(d, "internal/crypto") || strings.Contains(d, "badger") || strings.Contains(d, "bine")
		},
	},
	{
		name: "the client links the mailbox's protocol, not its service or store",
		from: func(p string) bool { return p == "sender" },
		forbidden: func(d string) bool {
			return (under(d, "mailbox") && !under(d, "mailbox/proto")) || strings.Contains(d, "dgraph-io/badger")
		},
	},
	{
		name: "the store interface links no storage engine",
		from: func(p string) bool { return p == "mailbox/store" },
		forbidden: func(d string) bool {
			return strings.Contains(d, "dgraph-io/badger") || under(d, "mailbox/store/badger")
		},
	},
	{
		name: "the Badger store knows nothing of the service",
		from: func(p string) bool { return p == "mailbox/store/badger" },
		forbidden: func(d string) bool {
			return under(d, "mailbox", "relay") && !under(d, "mailbox/store", "mailbox/proto")
		},
	},
	{
		name:      "a relay knows nothing of mailboxes or clients",
		from:      func(p string) bool { return p == "relay" },
		forbidden: func(d string) bool { return under(d, "mailbox", "sender", "sim") },
	},
	{
		name: "only tests, measurement and the binary use the test support",
		from: func(p string) bool {
			return !under(p, "internal/testbed", "internal/testkit", "internal/cmd", "sim/measure", "cmd")
		},
		forbidden: func(d string) bool { return under(d, "internal/testbed", "internal/testkit") },
	},
	{
		name:      "nothing imports the binary",
		from:      func(p string) bool { return !under(p, "cmd") },
		forbidden: func(d string) bool { return under(d, "cmd") },
	},
}

func (g graph) violations() []string {
	var bad []string
	for p, deps := range g {
		for _, r := range rules {
			if !r.from(p) {
				continue
			}
			for _, d := range deps {
				if r.forbidden(d) {
					bad = append(bad, r.name+": "+p+" depends on "+d)
				}
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// TestImportRules: the module's import graph keeps every rule of
// docs/architecture.md.
func TestImportRules(t *testing.T) {
	for _, v := range loadGraph(t).violations() {
		t.Error(v)
	}
}

// TestImportRulesCatchWrongArrows is the control: the graph as it was
// before the layout redesign (the envelope importing mailbox, which pulled
// in Badger; the client importing the mailbox service) breaks the rules,
// and each rule fires on an arrow made for it.
func TestImportRulesCatchWrongArrows(t *testing.T) {
	old := graph{
		"sender/seal":   {"mailbox", "relay", "github.com/dgraph-io/badger/v4", "internal/crypto/hmac256"},
		"sender":        {"mailbox", "sender/seal"},
		"relay":         {"mailbox/proto"},
		"mixnet/link":   {"relay"},
		"mailbox":       {"internal/testbed/testnet"},
		"sim":           {"cmd/sealnet"},
		"mixnet/mix":    {"internal/clock"},
		"mixnet":        {"internal/crypto/lioness"},
		"mailbox/proto": {"sender/seal"},
		// Step 3's arrows the wrong way: the interface linking Badger, the
		// Badger store reaching back into the service.
		"mailbox/store":        {"mailbox/proto", "github.com/dgraph-io/badger/v4"},
		"mailbox/store/badger": {"mailbox", "mailbox/store", "mailbox/proto"},
	}
	fired := map[string]bool{}
	for _, v := range old.violations() {
		name, _, _ := strings.Cut(v, ": ")
		fired[name] = true
	}
	for _, r := range rules {
		if !fired[r.name] {
			t.Errorf("rule %q did not fire on the old graph", r.name)
		}
	}
	clean := graph{"mixnet/mix": {"internal/clock"}, "mixnet": {"internal/crypto/lioness"}, "sender": {"mailbox/proto", "sender/seal"},
		"mailbox/store":        {"mailbox/proto", "sender/seal"},
		"mailbox/store/badger": {"mailbox/store", "mailbox/proto", "sender/seal", "internal/clock", "github.com/dgraph-io/badger/v4"},
		"mailbox":              {"mailbox/store", "mailbox/store/badger", "relay"}}
	if v := clean.violations(); len(v) != 0 {
		t.Errorf("allowed arrows reported: %v", v)
	}
}
