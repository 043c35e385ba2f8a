package sender

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The display text of each status, as states and histories saved it
// before the codes (and as `sealnet history` shows it).
var oldStatusText = map[Status]string{
	StatusQueued:    "queued",
	StatusBundle:    "fetching keys",
	StatusSending:   "sending",
	StatusDelivered: "delivered",
	StatusFailed:    "not delivered",
	StatusBlocked:   "blocked: identity changed",
	StatusSpooled:   "handed to the daemon, not yet queued",
}

// TestStatusCodes: each status is saved as its code, reads back as
// itself from the code and from its old text, and shows its old text; an
// unknown code or text is refused with an error that names it.
func TestStatusCodes(t *testing.T) {
	for s, text := range oldStatusText {
		if s.String() != text {
			t.Errorf("status %d shows %q, want %q", s, s.String(), text)
		}
		b, err := json.Marshal(s)
		if err != nil || string(b) != fmt.Sprint(uint8(s)) {
			t.Errorf("status %q saved as %s (%v), want its code %d", text, b, err, s)
		}
		for _, in := range []string{string(b), fmt.Sprintf("%q", text)} {
			var got Status
			if err := json.Unmarshal([]byte(in), &got); err != nil || got != s {
				t.Errorf("%s reads as %v (%v), want %q", in, got, err, text)
			}
		}
	}
	var none Status
	if err := json.Unmarshal([]byte(`""`), &none); err != nil || none != 0 || none.String() != "" {
		t.Errorf(`"" reads as %v (%v), want the zero status`, none, err)
	}
	for in, want := range map[string]string{
		`99`:       "unknown message status code 99",
		`8`:        "unknown message status code 8",
		`"lost"`:   `unknown message status "lost"`,
		`-1`:       "neither a status code nor a status text",
		`true`:     "neither a status code nor a status text",
		`"Queued"`: `unknown message status "Queued"`,
	} {
		var s Status
		if err := json.Unmarshal([]byte(in), &s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}

// oldOutgoing is an outbox entry as a version-2 state saved it: its
// status as text.
func oldOutgoing(id byte, status string) string {
	return fmt.Sprintf(`{"id":%q,"to":"bob@b","body":"aGk=","created":"2026-01-02T03:04:05Z","status":%q}`,
		base64.StdEncoding.EncodeToString(make16(id)), status)
}

func make16(b byte) []byte {
	out := make([]byte, 16)
	for i := range out {
		out[i] = b
	}
	return out
}

// writeOldState replaces dir's state by its own JSON as a version-2
// client saved it, with outbox as its outbox, and appends history
// records as they are.
func writeOldState(t *testing.T, dir string, pass []byte, outbox []string, history []string) {
	t.Helper()
	v, raw, err := openVault(dir, pass)
	if err != nil {
		t.Fatal(err)
	}
	defer v.close()
	var st map[string]json.RawMessage
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	st["version"] = json.RawMessage(`2`)
	st["outbox"] = json.RawMessage("[" + strings.Join(outbox, ",") + "]")
	var gen uint64
	json.Unmarshal(st["generation"], &gen)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.save(b, gen); err != nil {
		t.Fatal(err)
	}
	for _, r := range history {
		if err := v.appendHistory([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
}

func newOfflineDir(t *testing.T, pass []byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "home")
	err := Init(dir, pass, InitOptions{Address: "alice@a", Threshold: 1,
		Authorities: []AuthorityState{{URL: "http://127.0.0.1:9", Key: strings.Repeat("00", 32)}},
		KDF:         &KDFParams{Time: 1, Memory: 8 << 10, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOldStatusTextLoads: a state and a history saved before the status
// codes, with every status an outgoing message could have as its display
// text, load with the same statuses; saved again, the state holds the
// codes and reads back the same. A state with an unknown status code or
// text is refused, with an error that says so.
func TestOldStatusTextLoads(t *testing.T) {
	pass := []byte("pass")
	dir := newOfflineDir(t, pass)
	saved := []Status{StatusBundle, StatusSending, StatusDelivered, StatusFailed, StatusBlocked}
	var outbox []string
	for i, s := range saved {
		outbox = append(outbox, oldOutgoing(byte(i+1), oldStatusText[s]))
	}
	hex1, hex2 := strings.Repeat("01", 16), strings.Repeat("02", 16)
	history := []string{
		`{"id":"` + hex1 + `","from":"alice@a","to":"bob@b","sent":"2026-01-02T03:04:05Z","received":"0001-01-01T00:00:00Z","body":"hi","verified":false,"fingerprint":"","outgoing":true,"status":"queued"}`,
		`{"id":"` + hex2 + `","from":"alice@a","to":"carol@c","sent":"2026-01-02T03:04:05Z","received":"0001-01-01T00:00:00Z","body":"yo","verified":false,"fingerprint":"","outgoing":true,"status":"queued"}`,
		`{"id":"` + hex1 + `","from":"alice@a","to":"bob@b","sent":"2026-01-02T03:04:05Z","received":"0001-01-01T00:00:00Z","body":"","verified":false,"fingerprint":"","outgoing":true,"status":"delivered"}`,
		`{"id":"` + strings.Repeat("03", 16) + `","from":"bob@b","to":"alice@a","sent":"2026-01-02T03:04:05Z","received":"2026-01-02T03:04:06Z","body":"hello","verified":true,"fingerprint":"ab"}`,
	}
	writeOldState(t, dir, pass, outbox, history)

	check := func(c *Client, when string) {
		t.Helper()
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.st.Version != stateVersion || len(c.st.Outbox) != len(saved) {
			t.Fatalf("%s: version %d, %d outgoing; want %d, %d", when, c.st.Version, len(c.st.Outbox), stateVersion, len(saved))
		}
		for i, o := range c.st.Outbox {
			if o.ID[0] != byte(i+1) || o.Status != saved[i] {
				t.Errorf("%s: outgoing %d has status %q, want %q", when, o.ID[0], o.Status, saved[i])
			}
		}
	}
	c, err := Open(dir, pass, Options{})
	if err != nil {
		t.Fatalf("a version-2 state does not open: %v", err)
	}
	check(c, "old state")
	hist, err := c.History()
	if err != nil || len(hist) != 3 {
		t.Fatalf("history: %d entries, %v", len(hist), err)
	}
	for i, want := range []Status{StatusDelivered, StatusQueued, 0} {
		if hist[i].Status != want {
			t.Errorf("history entry %d (%s): status %q, want %q", i, hist[i].ID, hist[i].Status, want)
		}
	}
	c.mu.Lock()
	err = c.saveLocked()
	c.mu.Unlock()
	plain := string(c.PlainState())
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range saved {
		if strings.Contains(plain, fmt.Sprintf("%q", oldStatusText[s])) || !strings.Contains(plain, fmt.Sprintf(`"status":%d`, s)) {
			t.Errorf("the state saved again does not hold status %q as its code %d", oldStatusText[s], s)
		}
	}
	c, err = Open(dir, pass, Options{})
	if err != nil {
		t.Fatalf("the state saved with codes does not open: %v", err)
	}
	check(c, "saved again")
	c.Close()

	for status, want := range map[string]string{
		`"lost in the post"`: `unknown message status "lost in the post"`,
		`42`:                 "unknown message status code 42",
	} {
		dir := newOfflineDir(t, pass)
		writeOldState(t, dir, pass, []string{strings.Replace(oldOutgoing(1, "sending"), `"sending"`, status, 1)}, nil)
		if c, err := Open(dir, pass, Options{}); err == nil || !strings.Contains(err.Error(), want) {
			if c != nil {
				c.Close()
			}
			t.Errorf("a state with status %s: Open = %v, want an error naming %q", status, err, want)
		}
	}
}
