package sender

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"encoding/binary"
	"errors"
	"time"

	"github.com/sealnet/sealnet/sender/seal"
)

// mlkemFromSeed expands a stored 64-byte seed (FIPS 203's d || z) into
// the decapsulation key; only the seed is kept.
func mlkemFromSeed(seed []byte) (*mlkem.DecapsulationKey768, error) {
	return mlkem.NewDecapsulationKey768(seed)
}

// statePrekeys gives seal.Open the private prekeys from the state; the
// caller holds the client's lock.
type statePrekeys struct{ p *PrekeyState }

func (s statePrekeys) Signed(id uint32) (*ecdh.PrivateKey, bool) {
	for _, k := range []*PrivatePrekey{s.p.Signed, s.p.OldSigned} {
		if k != nil && k.ID == id {
			priv, err := ecdh.X25519().NewPrivateKey(k.Key)
			return priv, err == nil
		}
	}
	return nil, false
}

func (s statePrekeys) OneTime(id uint32) (*ecdh.PrivateKey, bool) {
	k, ok := s.p.OneTime[id]
	if !ok {
		return nil, false
	}
	priv, err := ecdh.X25519().NewPrivateKey(k)
	return priv, err == nil
}

func (s statePrekeys) PQ(id uint32) (*mlkem.DecapsulationKey768, byte, bool) {
	for _, k := range []*PrivatePrekey{s.p.LastResort, s.p.OldLastResort} {
		if k != nil && k.ID == id {
			dk, err := mlkemFromSeed(k.Key)
			return dk, seal.PQLastResort, err == nil
		}
	}
	if seed, ok := s.p.PQ[id]; ok {
		dk, err := mlkemFromSeed(seed)
		return dk, seal.PQOneTime, err == nil
	}
	return nil, 0, false
}

// SignedPrekeyLifetime is how long a signed prekey (and the last-resort
// PQ prekey) is used before the client uploads a new one; the previous
// one is kept for messages still in flight.
const SignedPrekeyLifetime = 7 * 24 * time.Hour

// The plaintext of a session message (what only the two ends see):
//
//	version (1) = 1 || message ID (16) || sent (8, Unix ms) || sender's delivery token (32)
//	|| body
//
// The token lets the recipient deliver its replies with a valid token; the
// message ID lets it show each message once.
const plainHeader = 1 + 16 + 8 + 32

var errPlain = errors.New("sender: message plaintext malformed")

func encodePlain(id []byte, sent time.Time, token, body []byte) []byte {
	b := make([]byte, 0, plainHeader+len(body))
	b = append(b, 1)
	b = append(b, id[:16]...)
	b = binary.BigEndian.AppendUint64(b, uint64(sent.UnixMilli()))
	var tok [32]byte
	copy(tok[:], token)
	b = append(b, tok[:]...)
	return append(b, body...)
}

type plain struct {
	ID    [16]byte
	Sent  time.Time
	Token [32]byte
	Body  []byte
}

func decodePlain(b []byte) (*plain, error) {
	if len(b) < plainHeader || b[0] != 1 || len(b)-plainHeader > MaxMessage {
		return nil, errPlain
	}
	p := &plain{Body: b[plainHeader:]}
	copy(p.ID[:], b[1:17])
	p.Sent = time.UnixMilli(int64(binary.BigEndian.Uint64(b[17:25])))
	copy(p.Token[:], b[25:57])
	return p, nil
}
