package sender

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var markerKDF = KDFParams{Time: 1, Memory: 8 << 10, Threads: 1}

// TestStateMarker: Open tells a state older than the last one saved in its
// directory (put back from a copy, with the marker left in place), one
// without the marker it had, and one with another directory's marker; it
// does not take for one a state newer than its marker (a crash between
// the two writes), the current state, or a state from before markers.
// A state found restored has its sessions retired and its current
// sessions forgotten, is saved above the marker, and is the current
// state from then on.
func TestStateMarker(t *testing.T) {
	pass := []byte("a passphrase")
	newDir := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "home")
		if err := Init(dir, pass, InitOptions{Address: "alice@a", Authorities: []AuthorityState{{URL: "http://127.0.0.1:1", Key: strings.Repeat("ab", 32)}},
			Threshold: 1, KDF: &markerKDF}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// open opens dir and reports whether it warned of a restored state.
	open := func(t *testing.T, dir string) (*Client, bool) {
		t.Helper()
		c, err := Open(dir, pass, Options{})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-c.Events():
			if e.Kind != EventWarning || !strings.Contains(e.Text, "older than the last one saved") {
				t.Fatalf("event %+v", e)
			}
			return c, true
		default:
			return c, false
		}
	}
	save := func(t *testing.T, c *Client, sessions ...string) {
		t.Helper()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, sid := range sessions {
			c.st.Sessions[sid] = []byte{1}
			c.st.Current[sid+"@b"] = sid
		}
		if err := c.saveLocked(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(t *testing.T, dir, name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := func(t *testing.T, dir, name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("restored", func(t *testing.T) {
		dir := newDir(t)
		c, warned := open(t, dir)
		if warned {
			t.Fatal("a new state taken for a restored one")
		}
		save(t, c, "aa")
		backup := read(t, dir, stateFile)
		save(t, c, "bb")
		c.Close()
		if c, warned = open(t, dir); warned {
			t.Fatal("the current state taken for a restored one")
		}
		c.Close()

		write(t, dir, stateFile, backup)
		c, warned = open(t, dir)
		if !warned {
			t.Fatal("a state put back from a copy was not noticed")
		}
		marker, err := c.v.readMarker()
		if err != nil || !c.st.Retired["aa"] || len(c.st.Current) != 0 || c.st.Generation != marker {
			t.Fatalf("after the restore: retired %v, current %v, generation %d, marker %d (%v)", c.st.Retired, c.st.Current, c.st.Generation, marker, err)
		}
		if _, ok := c.sendableLocked("aa@b"); ok {
			t.Fatal("a retired session is still sent on")
		}
		c.Close()
		if c, warned = open(t, dir); warned {
			t.Fatal("the state saved after the restore is taken for a restored one again")
		}
		c.Close()
	})

	t.Run("crash between the state and its marker", func(t *testing.T) {
		dir := newDir(t)
		c, _ := open(t, dir)
		save(t, c)
		old := read(t, dir, markerFile)
		save(t, c)
		c.Close()
		write(t, dir, markerFile, old) // the state was written, its marker not
		if c, warned := open(t, dir); warned {
			t.Fatal("a state newer than its marker taken for a restored one")
		} else {
			c.Close()
		}
	})

	t.Run("marker missing", func(t *testing.T) {
		dir := newDir(t)
		if err := os.Remove(filepath.Join(dir, markerFile)); err != nil {
			t.Fatal(err)
		}
		c, warned := open(t, dir)
		if !warned {
			t.Fatal("a state without the marker it had was not noticed")
		}
		c.Close()
	})

	t.Run("another directory's marker", func(t *testing.T) {
		dir, other := newDir(t), newDir(t)
		write(t, dir, markerFile, read(t, other, markerFile))
		c, warned := open(t, dir)
		if !warned {
			t.Fatal("a marker under another key was accepted")
		}
		c.Close()
	})

	t.Run("state from before markers", func(t *testing.T) {
		dir := newDir(t)
		c, _ := open(t, dir)
		c.mu.Lock()
		c.st.Generation = 0 // what an older version wrote: no generation...
		b, err := json.Marshal(c.st)
		if err == nil {
			err = c.v.save(b, 0)
		}
		c.mu.Unlock()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, markerFile)) // ...and no marker
		c, warned := open(t, dir)
		if warned {
			t.Fatal("a state from before markers taken for a restored one")
		}
		save(t, c)
		c.Close()
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			t.Fatalf("the first save wrote no marker: %v", err)
		}
	})

	t.Run("unreadable marker", func(t *testing.T) {
		dir := newDir(t)
		os.Remove(filepath.Join(dir, markerFile))
		if err := os.Mkdir(filepath.Join(dir, markerFile), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, pass, Options{}); err == nil || errors.Is(err, ErrPassphrase) || !strings.Contains(err.Error(), "marker") {
			t.Fatalf("open with a marker that cannot be read: %v", err)
		}
	})
}

// TestRestoredStateCases: restoredState's decision, case by case.
func TestRestoredStateCases(t *testing.T) {
	for _, c := range []struct {
		gen, marker uint64
		err         error
		want        bool
	}{
		{5, 5, nil, false},
		{6, 5, nil, false}, // crash after the state, before its marker
		{4, 5, nil, true},
		{0, 0, errNoMarker, false}, // from before markers
		{3, 0, errNoMarker, true},
		{3, 0, errBadMarker, true},
	} {
		if got, why := restoredState(c.gen, c.marker, c.err); got != c.want || got == (why == "") {
			t.Errorf("generation %d, marker %d, %v: %v (%q), want %v", c.gen, c.marker, c.err, got, why, c.want)
		}
	}
}
