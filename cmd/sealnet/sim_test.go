package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const simScenario = `
name = "cli"
users = 60
duration = "10s"
warmup = "2s"
[client]
rate = 2
[workload]
message_rate = 0.2
[adversary]
targets = 30
`

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scenario.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func requireFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v (size %d)", n, err, sizeOf(fi))
		}
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}

func TestSimRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runCLI("sim", "run", "--config", writeScenario(t, simScenario), "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	requireFiles(t, out, "result.json", "result.csv", "latency_cdf.png", "latency_cdf.svg")
	if !strings.Contains(stdout, "entropy") || !strings.Contains(stderr, "sim: done") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	var res struct {
		Scenario string `json:"scenario"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "result.json"))
	if err := json.Unmarshal(b, &res); err != nil || res.Scenario != "cli" {
		t.Fatalf("result.json: %v, %+v", err, res)
	}
	f, _ := os.Open(filepath.Join(out, "result.csv"))
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "entropy_bits_mean" {
		t.Fatalf("result.csv: %v, %v", err, rows)
	}
}

func TestSimSweep(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	scenario := simScenario + `
[sweep]
seeds = 2
[[sweep.param]]
key = "mixing.mean_delay"
values = ["10ms", "100ms"]
`
	code, stdout, stderr := runCLI("sim", "sweep", "--config", writeScenario(t, scenario), "--out", out, "--workers", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	requireFiles(t, out, "results.json", "results.csv", "latency_cdf.png", "latency_cdf.svg", "entropy_vs_delay.png", "entropy_vs_delay.svg")
	if _, err := os.Stat(filepath.Join(out, "attack_vs_cover.png")); err == nil {
		t.Error("attack_vs_cover drawn though client.rate was not swept")
	}
	if !strings.Contains(stderr, "2 point(s) × 2 seed(s) = 4 runs") || !strings.Contains(stderr, "4/4 runs") {
		t.Errorf("stderr lacks the plan or the progress:\n%s", stderr)
	}
	if !strings.Contains(stdout, "mixing.mean_delay=10ms") {
		t.Errorf("stdout:\n%s", stdout)
	}

	// run on a sweep file runs its base scenario once, and says so.
	code, _, stderr = runCLI("sim", "run", "--config", writeScenario(t, scenario), "--out", out)
	if code != 0 || !strings.Contains(stderr, "running its base scenario once") {
		t.Fatalf("run on a sweep file: exit %d, %s", code, stderr)
	}
}

func TestSimErrors(t *testing.T) {
	out := t.TempDir()
	typo := writeScenario(t, "users = 10\n[mixing]\nmean_dealy = \"1s\"\n")
	badSweep := writeScenario(t, "[sweep]\n[[sweep.param]]\nkey = \"client.rtae\"\nvalues = [1]\n")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sim"}, 2, "sealnet sim run"},
		{[]string{"sim", "walk"}, 2, `unknown subcommand "walk"`},
		{[]string{"sim", "run", "--out", out}, 2, "--config is required"},
		{[]string{"sim", "sweep", "--config", typo}, 2, "--out is required"},
		{[]string{"sim", "sweep", "--config", typo, "--out", out, "--workers", "0"}, 2, "--workers 0"},
		{[]string{"sim", "run", "--config", filepath.Join(out, "missing.toml"), "--out", out}, 1, "reading the scenario"},
		{[]string{"sim", "run", "--config", typo, "--out", out}, 1, "mixing.mean_dealy"},
		{[]string{"sim", "sweep", "--config", badSweep, "--out", out}, 1, `"client.rtae"`},
	}
	for _, c := range cases {
		code, stdout, stderr := runCLI(c.args...)
		if code != c.code || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("%v: exit %d, want %d; output %q lacks %q", c.args, code, c.code, stdout+stderr, c.want)
		}
	}
}
