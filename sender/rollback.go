package sender

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealnet/sealnet/internal/atomicfile"
)

// Restored states (docs/client.md §2.1).
//
// A session's chains are a fixed function of their key and the message
// number (docs/envelope.md §3.2), so a state put back from a backup seals
// message numbers it has used already. Since version 2 of the session
// message every message's AEAD key also depends on a fresh salt, so no
// key is used twice even then; but the peer has deleted the keys of those
// numbers and cannot read the messages. So the client notices a restored
// state and stops sending on its old sessions:
//
//   - every save increments State.Generation, writes the state, then
//     writes that generation to the marker file beside it (encrypted under
//     the state key, so that it does not tell a reader how much the user
//     did; vault.save);
//   - Open compares the two (restoredState): a state whose generation is
//     below the marker's, one that has a generation but no marker, or
//     one whose marker does not open under its key is older than the last
//     state saved in this directory, or was copied from elsewhere;
//   - such a state's sessions are all retired (they open what arrives on
//     them, and never seal again) and its current sessions forgotten, so
//     the next message to each contact fetches a fresh prekey bundle and
//     starts a new session (PQXDH); the user is warned.
//
// A whole directory put back together with its marker is not noticed
// here. The peers notice it (reusedNumberLocked): a message that its
// session refuses as already received, while its message ID was never
// shown, comes from a sender whose state went back. They warn their user
// and start a new session from their side, which the sender's client then
// sends on; what it sealed on the used numbers cannot be read.

const (
	markerFile = "state.marker"
	markerAD   = "sealnet state marker v1"
	markerSize = chacha20poly1305.NonceSizeX + 8 + chacha20poly1305.Overhead
)

var (
	// errNoMarker: the directory has no marker file.
	errNoMarker = errors.New("sender: no state marker")
	// errBadMarker: a marker file that is not one, or not under this
	// state's key.
	errBadMarker = errors.New("sender: the state marker is not this state's")
)

// sealMarker encodes generation gen under key with nonce (24 bytes).
func sealMarker(key *[32]byte, nonce []byte, gen uint64) []byte {
	aead, _ := chacha20poly1305.NewX(key[:])
	return aead.Seal(bytes.Clone(nonce), nonce, binary.BigEndian.AppendUint64(nil, gen), []byte(markerAD))
}

// openMarker decodes a marker file: exactly markerSize bytes that
// authenticate under key.
func openMarker(key *[32]byte, data []byte) (uint64, error) {
	if len(data) != markerSize {
		return 0, fmt.Errorf("%w: %d bytes, not %d", errBadMarker, len(data), markerSize)
	}
	aead, _ := chacha20poly1305.NewX(key[:])
	pt, err := aead.Open(nil, data[:chacha20poly1305.NonceSizeX], data[chacha20poly1305.NonceSizeX:], []byte(markerAD))
	if err != nil {
		return 0, fmt.Errorf("%w: it does not open under the state's key", errBadMarker)
	}
	return binary.BigEndian.Uint64(pt), nil
}

// writeMarker replaces the marker file with generation gen (atomically,
// fsynced).
func (v *vault) writeMarker(gen uint64) error {
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	rand.Read(nonce)
	return atomicfile.Write(filepath.Join(v.dir, markerFile), sealMarker(&v.key, nonce, gen))
}

// readMarker returns the generation in the marker file: errNoMarker if
// there is none, errBadMarker if it is not a marker under this key.
func (v *vault) readMarker() (uint64, error) {
	f, err := os.Open(filepath.Join(v.dir, markerFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, errNoMarker
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, markerSize+1))
	if err != nil {
		return 0, err
	}
	return openMarker(&v.key, data)
}

// restoredState says whether a state of generation gen is older than the
// last state saved in its directory, given what readMarker returned
// (marker, err), and why. A state from before markers (generation 0) with
// no marker is not.
func restoredState(gen, marker uint64, err error) (bool, string) {
	switch {
	case errors.Is(err, errNoMarker) && gen == 0:
		return false, ""
	case errors.Is(err, errNoMarker):
		return true, "the marker file beside it is missing"
	case err != nil:
		return true, err.Error()
	case marker > gen:
		return true, fmt.Sprintf("it is %d saves older than the last state saved there", marker-gen)
	}
	return false, ""
}

// warnRestored is what the user is told when Open finds a restored state.
func warnRestored(why string) string {
	return "this state is older than the last one saved in its directory (" + why + "): it was restored from a backup or copied. " +
		"Its sessions would repeat message numbers that your contacts have already used, so they will not send again: " +
		"your next message to each contact starts a new session with fresh keys. " +
		"Messages sent or received after that copy was made are not in this state or its history."
}

// checkRestored runs in Open: if the state is older than the marker says,
// it retires every session, warns, and saves (with a generation above the
// marker's). An unreadable marker file (not a missing or foreign one) is
// an error.
func (c *Client) checkRestored() error {
	marker, err := c.v.readMarker()
	if err != nil && !errors.Is(err, errNoMarker) && !errors.Is(err, errBadMarker) {
		return fmt.Errorf("sender: reading the state marker: %w", err)
	}
	restored, why := restoredState(c.st.Generation, marker, err)
	if !restored {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Generation = max(c.st.Generation, marker)
	for sid := range c.st.Sessions {
		c.st.Retired[sid] = true
	}
	clear(c.st.Current)
	c.log.Warn("the state is older than the last one saved in its directory; its sessions will not send again", "why", why, "sessions", len(c.st.Sessions))
	c.emit(Event{Kind: EventWarning, Text: warnRestored(why)})
	return c.saveLocked()
}

// sendableLocked returns the session to seal on for address to: its
// current session, if it exists and is not retired.
func (c *Client) sendableLocked(to string) (string, bool) {
	sid, ok := c.st.Current[to]
	if !ok || c.st.Sessions[sid] == nil || c.st.Retired[sid] {
		return "", false
	}
	return sid, true
}

// reusedNumberLocked handles a message from contact from that session sid
// refused as already received (seal.ErrReplay) although this client never
// showed its message ID: the sender sealed a message number again, which
// a client does only from a state that went back (or, rarely, the message
// arrived after more than seal.MaxSkipped later ones and its key was
// dropped). The session is retired, so this client's next message to the
// contact starts a new session, which the contact's client then sends on;
// the user is told once per session.
func (c *Client) reusedNumberLocked(sid, from string) {
	if c.st.Retired[sid] || c.st.Sessions[sid] == nil {
		return
	}
	c.st.Retired[sid] = true
	if c.st.Current[from] == sid {
		delete(c.st.Current, from)
	}
	c.log.Warn("a message reused a number its session had used: the sender's state may have been restored from a backup; the session will not send again")
	c.emit(Event{Kind: EventWarning, To: from, Text: warnReused(from)})
	if err := c.saveLocked(); err != nil {
		c.log.Error("saving state", "err", err)
	}
}

func warnReused(from string) string {
	return fmt.Sprintf("a message from %s could not be read: it reused a message number of your conversation, "+
		"which happens when %s's client was restored from a backup. Your next message to %s starts a new session; "+
		"ask %s to send again what they sent recently.", from, from, from, from)
}
