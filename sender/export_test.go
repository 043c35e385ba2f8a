package sender

import (
	"encoding/hex"
	"encoding/json"

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
