package load

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealnet/sealnet/sim"
)

func validTruth(t testing.TB) []byte {
	cfg, err := sim.ParseConfig(sim.MeasureScenario)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users, cfg.Adv.TopK = 3, []int{1}
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tr := Truth{Started: start, Ended: start.Add(time.Minute), Warmup: 5, Duration: 50, Scenario: cfg,
		Users: []User{{Address: "u0@a", Host: UserHost(0), Provider: "a", Contacts: []int32{1, 2}},
			{Address: "u1@b", Host: UserHost(1), Provider: "b", Contacts: []int32{0}},
			{Address: "u2@a", Host: UserHost(2), Provider: "a", Contacts: []int32{1}}},
		Messages: []Message{{ID: "00", From: 0, To: 1, Queued: start.Add(time.Second), Received: start.Add(2 * time.Second)}}}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTruth(t *testing.T) {
	good := validTruth(t)
	if _, err := ParseTruth(good); err != nil {
		t.Fatalf("a valid file: %v", err)
	}
	for name, edit := range map[string]func(string) string{
		"self contact":   func(s string) string { return strings.Replace(s, `"contacts":[0]`, `"contacts":[1]`, 1) },
		"unknown user":   func(s string) string { return strings.Replace(s, `"to":1`, `"to":7`, 1) },
		"negative user":  func(s string) string { return strings.Replace(s, `"from":0`, `"from":-1`, 1) },
		"no contacts":    func(s string) string { return strings.Replace(s, `"contacts":[0]`, `"contacts":[]`, 1) },
		"user count":     func(s string) string { return strings.Replace(s, `"Users":3`, `"Users":4`, 1) },
		"warm-up":        func(s string) string { return strings.Replace(s, `"warmup_s":5`, `"warmup_s":60`, 1) },
		"not json":       func(s string) string { return s[:len(s)/2] },
		"bad scenario":   func(s string) string { return strings.Replace(s, `"Layers":3`, `"Layers":99`, 1) },
		"missing fields": func(string) string { return `{}` },
	} {
		b := edit(string(good))
		if b == string(good) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if _, err := ParseTruth([]byte(b)); !errors.Is(err, ErrTruth) {
			t.Errorf("%s: got %v, want ErrTruth", name, err)
		}
	}
}

// FuzzParseTruth: the analysis indexes users by the file's numbers, so no
// input may get past ParseTruth with one out of range.
func FuzzParseTruth(f *testing.F) {
	good := validTruth(f)
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(strings.Replace(string(good), `"to":1`, `"to":3`, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseTruth(b)
		if err != nil {
			return
		}
		n := int32(len(tr.Users))
		for _, m := range tr.Messages {
			if m.From < 0 || m.From >= n || m.To < 0 || m.To >= n {
				t.Fatalf("message with users %d→%d of %d accepted", m.From, m.To, n)
			}
		}
		for _, u := range tr.Users {
			for _, c := range u.Contacts {
				if c < 0 || c >= n {
					t.Fatalf("contact %d of %d accepted", c, n)
				}
			}
		}
	})
}
