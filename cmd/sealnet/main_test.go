package main

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/sealnet/sealnet/mixnet"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestGeometryJSON(t *testing.T) {
	code, out, errOut := runCLI("geometry", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var info geometryInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	g := mixnet.DefaultGeometry()
	if info.Hash != g.Hash().String() || info.PacketSize != g.PacketSize() || info.MessageSize != g.MessageSize() {
		t.Fatalf("geometry output %+v does not describe %v", info, g)
	}
}

func TestGeometryText(t *testing.T) {
	code, out, _ := runCLI("geometry")
	if code != 0 || !strings.Contains(out, mixnet.DefaultGeometry().Hash().String()) || !strings.Contains(out, "2577 bytes") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"help"}, 0, "geometry"},
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"geometry", "--nosuch"}, 2, "flag provided but not defined"},
		{[]string{"geometry", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"version"}, 0, "sealnet dev"},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%v: exit %d, want %d; output %q lacks %q", c.args, code, c.code, out+errOut, c.want)
		}
	}
}

// invocations are every command and subcommand, as a user types it.
func invocations() [][]string {
	var out [][]string
	for name := range commands {
		switch name {
		case "sim":
			out = append(out, []string{"sim", "run"}, []string{"sim", "sweep"}, []string{"sim", "analyze"})
		case "testnet":
			out = append(out, []string{"testnet", "up"}, []string{"testnet", "load"})
		default:
			out = append(out, []string{name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.Join(out[i], " ") < strings.Join(out[j], " ") })
	return out
}

// TestHelpSucceeds: asking any command for help prints its usage on
// stdout, nothing on stderr, and exits 0; a flag it does not have is a
// usage error: exit 2, the error and the usage on stderr, nothing on
// stdout.
func TestHelpSucceeds(t *testing.T) {
	for _, inv := range invocations() {
		usage := "Usage: sealnet " + strings.Join(inv, " ")
		for _, h := range []string{"--help", "-h", "-help"} {
			code, out, errOut := runCLI(append(inv, h)...)
			if code != 0 || !strings.Contains(out, usage) || errOut != "" {
				t.Errorf("%v %s: exit %d, want 0; stdout %q should hold %q; stderr %q should be empty", inv, h, code, out, usage, errOut)
			}
		}
		code, out, errOut := runCLI(append(inv, "--no-such-flag")...)
		if code != 2 || !strings.Contains(errOut, "flag provided but not defined: -no-such-flag") || !strings.Contains(errOut, usage) || out != "" {
			t.Errorf("%v --no-such-flag: exit %d, want 2; stderr %q should hold the error and %q; stdout %q should be empty", inv, code, errOut, usage, out)
		}
	}
	if n := len(invocations()); n < len(commands) {
		t.Fatalf("%d invocations for %d commands", n, len(commands))
	}
	// The whole program and the commands with subcommands.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "Commands:"},
		{[]string{"-h"}, "Commands:"},
		{[]string{"-help"}, "Commands:"},
		{[]string{"help"}, "Commands:"},
		{[]string{"help", "relay"}, "Usage: sealnet relay --config"},
		{[]string{"help", "send"}, "Routes and what they protect against"},
		{[]string{"sim", "--help"}, "Usage: sealnet sim run"},
		{[]string{"sim", "help"}, "Usage: sealnet sim run"},
		{[]string{"testnet", "--help"}, "Usage: sealnet testnet up"},
		{[]string{"testnet", "-h"}, "Usage: sealnet testnet up"},
	} {
		code, out, errOut := runCLI(c.args...)
		if code != 0 || !strings.Contains(out, c.want) || errOut != "" {
			t.Errorf("%v: exit %d, want 0; stdout %q should hold %q; stderr %q should be empty", c.args, code, out, c.want, errOut)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "Commands:"},
		{[]string{"--no-such-flag"}, `unknown command "--no-such-flag"`},
		{[]string{"help", "nosuch"}, `unknown command "nosuch"`},
		{[]string{"sim"}, "Usage: sealnet sim run"},
		{[]string{"sim", "nosuch"}, `unknown subcommand "nosuch"`},
		{[]string{"testnet"}, "Usage: sealnet testnet up"},
		{[]string{"testnet", "nosuch"}, `unknown subcommand "nosuch"`},
		{[]string{"relay"}, "--config is required"},
	} {
		code, out, errOut := runCLI(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%v: exit %d, want 2; stderr %q should hold %q; stdout %q should be empty", c.args, code, errOut, c.want, out)
		}
	}
}
