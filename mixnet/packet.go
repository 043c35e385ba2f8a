package mixnet

import (
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealnet/sealnet/internal/crypto/lioness"
)

// Hop is one node on a path, as the sender knows it from the directory.
type Hop struct {
	// ID names the node; the previous hop forwards to it.
	ID NodeID
	// PublicKey is the node's X25519 mix key for the packet's epoch.
	PublicKey [32]byte
	// Delay is how long the node should hold the packet before forwarding
	// it; senders draw it from an exponential distribution (Poisson mixing).
	// Zero means no delay command.
	Delay time.Duration
}

var zeroNonce [chacha20poly1305.NonceSize]byte

// NewPacket builds a packet that carries message along path to recipient's
// mailbox at the path's last hop. The message is padded with zeros to
// Geometry.MessageSize. All randomness is read from rng: 32 bytes of
// ephemeral key per hop in path order, then the header padding, so a fixed
// reader gives a reproducible packet.
func NewPacket(rng io.Reader, g Geometry, path []Hop, recipient RecipientID, message []byte) ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(message) > g.MessageSize() {
		return nil, fmt.Errorf("%w: %d bytes, at most %d fit", ErrMessageSize, len(message), g.MessageSize())
	}
	final := routing{deliver: true, recipient: recipient}
	pkt := make([]byte, g.PacketSize())
	keys, err := buildHeader(rng, g, path, &final, pkt[:g.HeaderSize()])
	if err != nil {
		return nil, err
	}
	defer wipeKeys(keys)
	block := pkt[g.HeaderSize():]
	copy(block[PayloadTagSize:], message)
	for i := len(keys) - 1; i >= 0; i-- {
		if err := lioness.Encrypt(&keys[i].payload, block); err != nil {
			return nil, err
		}
	}
	return pkt, nil
}

func wipeKeys(keys []hopKeys) {
	for i := range keys {
		keys[i].wipe()
	}
}

// buildHeader writes a header for path into hdr (HeaderSize bytes) whose
// final hop acts on final, and returns every hop's keys.
//
// With n = MaxHops slots of R bytes, hop i receives routing information β_i
// (n·R bytes) encrypted under its header key, decrypts it to slot_i ||
// β_{i+1}[:(n-1)R], and appends R bytes of its own keystream (its filler
// F_i) to form β_{i+1}. The sender must therefore predict the tail of each
// β_i: φ_i, the last i·R bytes of β_i, satisfies
//
//	φ_0 = ε,  φ_{i+1} = (φ_i ⊕ KS_i[(n-i)R : nR]) || F_i
//
// where KS_i is hop i's AEAD keystream. The last hop's plaintext is
// slot || random padding || (φ ⊕ KS), so its ciphertext ends in φ; each
// earlier β_i is the encryption of slot_i || β_{i+1}[:(n-1)R].
func buildHeader(rng io.Reader, g Geometry, path []Hop, final *routing, hdr []byte) ([]hopKeys, error) {
	h, n, r := len(path), g.MaxHops, g.RoutingInfoSize
	if h < 1 || h > n {
		return nil, fmt.Errorf("%w: %d hops, want 1 to %d", ErrPath, h, n)
	}
	delays := make([]uint32, h)
	for i := range path {
		var err error
		if delays[i], err = encodeDelay(path[i].Delay); err != nil {
			return nil, err
		}
	}
	keys := make([]hopKeys, h)
	ephs := make([][ephemeralSize]byte, h)
	var seed [32]byte
	for i := range path {
		if _, err := io.ReadFull(rng, seed[:]); err != nil {
			wipeKeys(keys)
			return nil, fmt.Errorf("mixnet: read randomness: %w", err)
		}
		eph, err := ecdh.X25519().NewPrivateKey(seed[:])
		if err != nil {
			wipeKeys(keys)
			return nil, fmt.Errorf("mixnet: ephemeral key: %w", err)
		}
		copy(ephs[i][:], eph.PublicKey().Bytes())
		dh, err := x25519(eph, path[i].PublicKey[:])
		if err != nil {
			wipeKeys(keys)
			return nil, fmt.Errorf("%w: hop %d (%v) has an invalid mix key", ErrInvalidKey, i, path[i].ID)
		}
		hs := staticHash(g, path[i].PublicKey[:])
		err = deriveHopKeys(&hs, ephs[i][:], dh, &keys[i])
		clear(dh)
		if err != nil {
			wipeKeys(keys)
			return nil, err
		}
	}
	clear(seed[:])

	betaLen := n * r
	// Each hop's AEAD keystream over β (for φ) and its filler F.
	ks := make([]byte, betaLen)
	filler := make([]byte, r)
	phi := make([]byte, 0, (h-1)*r)
	for i := 0; i < h-1; i++ {
		keystream(&keys[i].headerKey, 1, ks)
		subtle.XORBytes(phi, phi, ks[(n-i)*r:])
		keystream(&keys[i].headerKey, g.fillerCounter(), filler)
		phi = append(phi, filler...)
	}

	// The last hop.
	pt := make([]byte, betaLen)
	last := *final
	last.delayUS = delays[h-1]
	if err := last.encode(pt[:r]); err != nil {
		wipeKeys(keys)
		return nil, err
	}
	if _, err := io.ReadFull(rng, pt[r:(n-h+1)*r]); err != nil {
		wipeKeys(keys)
		return nil, fmt.Errorf("mixnet: read randomness: %w", err)
	}
	keystream(&keys[h-1].headerKey, 1, ks)
	subtle.XORBytes(pt[(n-h+1)*r:], phi, ks[(n-h+1)*r:])
	beta := make([]byte, betaLen+headerTagSize)
	seal(&keys[h-1], beta[:0], pt)

	// Earlier hops, backwards.
	for i := h - 2; i >= 0; i-- {
		next := routing{next: true, nextHop: path[i+1].ID, nextEph: ephs[i+1], delayUS: delays[i]}
		copy(next.nextTag[:], beta[betaLen:])
		if err := next.encode(pt[:r]); err != nil {
			wipeKeys(keys)
			return nil, err
		}
		copy(pt[r:], beta[:betaLen-r])
		seal(&keys[i], beta[:0], pt)
	}
	clear(pt)

	hdr[0] = g.Version
	copy(hdr[versionSize:], ephs[0][:])
	copy(hdr[versionSize+ephemeralSize:], beta)
	return keys, nil
}

// seal encrypts one hop's routing information: Noise EncryptAndHash with
// nonce 0 and the handshake hash as associated data.
func seal(k *hopKeys, dst, pt []byte) {
	aead, err := chacha20poly1305.New(k.headerKey[:])
	if err != nil {
		panic("mixnet: chacha20poly1305 rejected a 32-byte key") // unreachable
	}
	aead.Seal(dst, zeroNonce[:], pt, k.ad[:])
}
