package main

import (
	"bytes"
	"encoding/json"
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
