package sender

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealnet/sealnet/internal/clock"
)

// The spool lets `sealnet send` hand a message to a running daemon, which
// holds the state directory's lock: the message is written encrypted
// under the state key to spool/ID.msg, the daemon queues and removes it,
// and the sender follows the outcome in the (encrypted) history.
//
//	spool file: nonce (24) || XChaCha20-Poly1305(key, nonce, ad = "sealnet spool v1", JSON {id, to, body})
const (
	spoolDir = "spool"
	spoolAD  = "sealnet spool v1"
)

type spooled struct {
	ID   []byte `json:"id"`
	To   string `json:"to"`
	Body []byte `json:"body"`
	// Route is RouteOnion or empty (the mix network).
	Route Route `json:"route,omitempty"`
}

// Spool writes a message for the daemon that holds dir, by route ("" or
// RouteMix: the mix network; the daemon must reach onion services for
// RouteOnion), and returns its ID.
func Spool(dir string, pass []byte, to string, body []byte, route Route) (string, error) {
	if len(body) > MaxMessage {
		return "", fmt.Errorf("sender: message of %d bytes; at most %d", len(body), MaxMessage)
	}
	v, raw, err := readVault(dir, pass)
	if err != nil {
		return "", err
	}
	defer v.close()
	clear(raw)
	id := make([]byte, 16)
	crand.Read(id)
	pt, err := json.Marshal(spooled{ID: id, To: strings.ToLower(to), Body: body, Route: route})
	if err != nil {
		return "", err
	}
	aead, _ := chacha20poly1305.NewX(v.key[:])
	nonce := make([]byte, 24)
	crand.Read(nonce)
	out := append(nonce, aead.Seal(nil, nonce, pt, []byte(spoolAD))...)
	clear(pt)
	sd := filepath.Join(dir, spoolDir)
	if err := os.MkdirAll(sd, 0o700); err != nil {
		return "", err
	}
	name := hex.EncodeToString(id)
	tmp := filepath.Join(sd, "."+name)
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return "", err
	}
	return name, os.Rename(tmp, filepath.Join(sd, name+".msg"))
}

// spoolIn queues the messages spooled for this client.
func (c *Client) spoolIn() {
	sd := filepath.Join(c.v.dir, spoolDir)
	names, _ := filepath.Glob(filepath.Join(sd, "*.msg"))
	for _, n := range names {
		err := c.spoolOne(n)
		if errors.Is(err, ErrOutboxFull) {
			return // left in the spool until there is room
		}
		if err != nil {
			c.log.Warn("a spooled message could not be queued", "file", filepath.Base(n), "err", err)
			os.Rename(n, n+".refused")
			continue
		}
		os.Remove(n)
	}
}

func (c *Client) spoolOne(name string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	s, err := decodeSpool(&c.v.key, data)
	if err != nil {
		return err
	}
	_, err = c.queue(s.ID, s.To, s.Body, s.Route)
	if err != nil && !errors.Is(err, ErrOutboxFull) {
		c.mu.Lock()
		c.appendHistoryLocked(&Message{ID: hex.EncodeToString(s.ID), From: c.st.Address, To: s.To, Outgoing: true, Status: StatusFailed, Warning: err.Error()})
		c.mu.Unlock()
	}
	return err
}

// decodeSpool decrypts and checks a spool file.
func decodeSpool(key *[32]byte, data []byte) (*spooled, error) {
	if len(data) < 24+16 || len(data) > 2*MaxMessage+4096 {
		return nil, errors.New("not a spool file")
	}
	aead, _ := chacha20poly1305.NewX(key[:])
	pt, err := aead.Open(nil, data[:24], data[24:], []byte(spoolAD))
	if err != nil {
		return nil, errors.New("does not decrypt under this identity's key")
	}
	var s spooled
	err = json.Unmarshal(pt, &s)
	clear(pt)
	if err != nil || len(s.ID) != 16 || len(s.Body) > MaxMessage {
		return nil, errors.New("malformed")
	}
	return &s, nil
}

// WaitOutcome follows an outgoing message in dir's history until it is
// delivered or not (or ctx ends), without taking the directory's lock.
func WaitOutcome(ctx context.Context, dir string, pass []byte, id string) (*Message, error) {
	return waitOutcome(ctx, clock.System(), dir, pass, id)
}

// outcomePoll is how often waitOutcome reads the history again.
const outcomePoll = 300 * time.Millisecond

// waitOutcome is WaitOutcome polling on clk (the caller holds no Client,
// so no Options.Clock: tests pass theirs here).
func waitOutcome(ctx context.Context, clk clock.Clock, dir string, pass []byte, id string) (*Message, error) {
	v, raw, err := readVault(dir, pass)
	if err != nil {
		return nil, err
	}
	defer v.close()
	clear(raw)
	t := clk.NewTimer(outcomePoll)
	defer t.Stop()
	for {
		hist, _ := historyOf(v)
		for _, m := range hist {
			if m.ID == id && m.Outgoing && m.Status.Done() {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C():
			t.Reset(outcomePoll)
		}
	}
}

// ReadHistory returns dir's history without taking the directory's lock
// (a daemon may be running).
func ReadHistory(dir string, pass []byte) ([]*Message, error) {
	v, raw, err := readVault(dir, pass)
	if err != nil {
		return nil, err
	}
	defer v.close()
	clear(raw)
	return historyOf(v)
}

// Spooled returns the messages in dir's spool that no daemon has queued
// yet, as outgoing messages with StatusSpooled, without taking the
// directory's lock.
func Spooled(dir string, pass []byte) ([]*Message, error) {
	v, raw, err := readVault(dir, pass)
	if err != nil {
		return nil, err
	}
	defer v.close()
	clear(raw)
	names, _ := filepath.Glob(filepath.Join(dir, spoolDir, "*.msg"))
	var out []*Message
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			continue // queued and removed meanwhile
		}
		s, err := decodeSpool(&v.key, data)
		if err != nil {
			continue
		}
		st, _ := os.Stat(n)
		m := &Message{ID: hex.EncodeToString(s.ID), To: s.To, Body: string(s.Body), Outgoing: true, Status: StatusSpooled}
		if st != nil {
			m.Sent = st.ModTime()
		}
		out = append(out, m)
	}
	return out, nil
}
