package sender

import (
	"bytes"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sealnet/sealnet/sender/seal"
)

// Thief is what someone who copied the state directory and learnt the
// passphrase holds: the identity, the prekeys and the sessions as they
// are at that moment.
type Thief struct {
	ID      *seal.Identity
	Prekeys seal.Prekeys
	Lookup  func([16]byte) (*seal.Session, bool)
}

// Steal copies the client's secrets now (tests of forward secrecy).
func (c *Client) Steal() *Thief {
	c.mu.Lock()
	b, err := json.Marshal(c.st)
	c.mu.Unlock()
	if err != nil {
		panic(err)
	}
	st := &State{}
	if err := json.Unmarshal(b, st); err != nil {
		panic(err)
	}
	st.init()
	id, err := seal.UnmarshalIdentity(st.Identity)
	if err != nil {
		panic(err)
	}
	return &Thief{ID: id, Prekeys: statePrekeys{&st.Prekeys}, Lookup: func(sid [16]byte) (*seal.Session, bool) {
		raw, ok := st.Sessions[hex.EncodeToString(sid[:])]
		if !ok {
			return nil, false
		}
		s, err := seal.UnmarshalSession(raw)
		return s, err == nil
	}}
}

// Certificate returns the client's sender certificate.
func (c *Client) Certificate() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.st.Certificate...)
}

// Public returns the client's public identity.
func (c *Client) Public() seal.PublicIdentity { return c.id.Public() }

// Token returns the client's own delivery token.
func (c *Client) Token() [32]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return [32]byte(c.st.Token)
}

// SealOffline queues body to `to` and seals it on a new session from
// bundle b, as if b had come from to's provider, with a signed and a
// one-time prekey of the user's own in the state and a certificate from
// a provider key made up here, and saves: a state that holds every kind of
// secret, without a network (TestStateEncryptedAtRest).
func (c *Client) SealOffline(to string, body []byte, b *seal.PrekeyBundle) error {
	_, provider, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		return err
	}
	pub := c.id.Public()
	cert, err := seal.SignCertificate(seal.Certificate{Address: c.st.Address, IdentityX25519: pub.X25519, IdentityEd25519: pub.Ed25519,
		Expires: time.Now().Add(time.Hour).Truncate(time.Hour)}, provider)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.st.Registered, c.st.Certificate = true, cert
	c.st.Prekeys.Signed = &PrivatePrekey{ID: 1, Key: randomBytes(32)}
	c.st.Prekeys.OneTime[2] = randomBytes(32)
	c.st.Prekeys.PQ[3] = randomBytes(64)
	c.mu.Unlock()
	id, err := c.Queue(to, body, RouteMix)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.st.Outbox {
		if o.idHex() == id {
			c.startSessionLocked(o, b)
			if o.Status != StatusSending {
				return fmt.Errorf("not sealed: %s %s", o.Status, o.Detail)
			}
		}
	}
	return c.saveLocked()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	crand.Read(b)
	return b
}

// Secrets returns, by name, the secret material the client holds: its
// identity's private keys, its delivery token, its prekeys' private
// halves, every session's chain keys (docs/envelope.md §3.5: sending at
// byte 146, receiving at 182), and the key derived from the passphrase.
func (c *Client) Secrets() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := map[string][]byte{
		"identity X25519 private key": c.id.X25519.Bytes(),
		"identity Ed25519 seed":       c.id.Ed25519.Seed(),
		"delivery token":              bytes.Clone(c.st.Token),
		"passphrase-derived key":      bytes.Clone(c.v.key[:]),
	}
	if p := c.st.Prekeys.Signed; p != nil {
		s["signed prekey"] = bytes.Clone(p.Key)
	}
	for id, k := range c.st.Prekeys.OneTime {
		s[fmt.Sprint("one-time prekey ", id)] = bytes.Clone(k)
	}
	for id, k := range c.st.Prekeys.PQ {
		s[fmt.Sprint("PQ prekey seed ", id)] = bytes.Clone(k)
	}
	for sid, raw := range c.st.Sessions {
		s["sending chain key of "+sid] = bytes.Clone(raw[146:178])
		s["receiving chain key of "+sid] = bytes.Clone(raw[182:214])
	}
	return s
}

// PlainState is the state as the vault would write it without its
// encryption (the control of TestStateEncryptedAtRest).
func (c *Client) PlainState() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := json.Marshal(c.st)
	if err != nil {
		panic(err)
	}
	return b
}
