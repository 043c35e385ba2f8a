package mailbox

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mailbox/store"
	"github.com/sealnet/sealnet/sender/seal"
)

// Fake bundles. A bundle request for a mailbox that does not exist is
// answered with the bundle of a phantom: an account that the public client
// (sender) could have registered here, with keys derived from the
// provider's secret and the mailbox ID. Everything a stranger sees in it
// is what a real account shows (docs/mailbox.md §5):
//
//   - prekey IDs numbered as the client numbers them: at registration the
//     signed prekey 1, the last-resort prekey 2, one-time prekeys 3 to 52,
//     post-quantum one-time prekeys 53 to 62; each weekly rotation the next
//     two IDs for a new signed and last-resort prekey;
//   - one-time prekeys handed out in order, each once, as many as a client
//     uploads and no more (the store counts them: Store.TakePhantom), under
//     the same per-mailbox rate limits; after the tenth the post-quantum
//     key is the last-resort one, after the fiftieth there is no one-time
//     key, as for an account whose owner receives nothing;
//   - a registration time and weekly rotations drawn per mailbox: it was
//     registered in the first week of the provider's store, and rotates on
//     each weekly anniversary of that with a probability of its own (an
//     owner online some weeks and not others), so its signed prekey ID
//     tells its age no better than a real account's does;
//   - keys of the real sizes, each the same whenever its ID is shown, and
//     signatures made the same way.
//
// What a phantom does not imitate: an owner who receives first messages
// (their one-time prekeys are replaced under new IDs) or changes devices.
// A stranger who knows how the real accounts of a provider behave can
// compare populations; it cannot tell one address by the client's rules.

// The public client's prekey layout (sender.Client.replenishLocked,
// sender.DefaultSettings, sender.SignedPrekeyLifetime), which phantoms
// imitate; TestPhantomIsAFreshClient ties them to the client.
const (
	clientOneTime  = 50
	clientPQ       = 10
	clientRotation = 7 * 24 * time.Hour
	// clientRotatedID is the first ID after registration's: a rotation
	// k ≥ 1 uploads the signed prekey clientRotatedID + 2(k−1) and the
	// last-resort one after it.
	clientRotatedID = 3 + clientOneTime + clientPQ
	// phantomMaxWeeks bounds the weeks a phantom's schedule is drawn for
	// (twenty years), and so the work of one bundle.
	phantomMaxWeeks = 20 * 52
)

// fakeKey derives a phantom's key material for label.
func (s *Service) fakeKey(mb proto.MailboxID, label string, n int) []byte {
	out, err := hkdf.Key(sha256.New, s.secret[:], mb[:], "sealnet fake bundle "+label, n)
	if err != nil {
		panic(err) // sizes are fixed and valid
	}
	return out
}

// phantomRotations is how many times mb's phantom has rotated its signed
// prekey by now.
func (s *Service) phantomRotations(mb proto.MailboxID, now time.Time) int {
	sched := s.fakeKey(mb, "schedule", 48)
	unit := func(b []byte) float64 { return float64(binary.BigEndian.Uint64(b)>>11) / (1 << 53) }
	registered := s.store.Created().Add(time.Duration(unit(sched[:8]) * float64(clientRotation)))
	online := 1 - unit(sched[8:16]) // in (0, 1]
	if !now.After(registered) {
		return 0
	}
	weeks := min(int(now.Sub(registered)/clientRotation), phantomMaxWeeks)
	r := rand.New(rand.NewChaCha8([32]byte(sched[16:48])))
	k := 0
	for range weeks {
		if r.Float64() < online {
			k++
		}
	}
	return k
}

// phantomBundle is mb's fake bundle; take hands out one of its one-time
// prekeys, as the same request to a real account would.
func (s *Service) phantomBundle(mb proto.MailboxID, take bool, now time.Time) (*seal.PrekeyBundle, error) {
	ed := ed25519.NewKeyFromSeed(s.fakeKey(mb, "ed25519", ed25519.SeedSize))
	x, err := ecdh.X25519().NewPrivateKey(s.fakeKey(mb, "x25519", 32))
	if err != nil {
		return nil, err
	}
	b := &seal.PrekeyBundle{}
	copy(b.IdentityX25519[:], x.PublicKey().Bytes())
	copy(b.IdentityEd25519[:], ed.Public().(ed25519.PublicKey))

	signedID := uint32(1)
	if k := s.phantomRotations(mb, now); k > 0 {
		signedID = uint32(clientRotatedID + 2*(k-1))
	}
	sp, err := ecdh.X25519().NewPrivateKey(s.fakeKey(mb, fmt.Sprintf("signed %d", signedID), 32))
	if err != nil {
		return nil, err
	}
	b.Signed = seal.NewSignedPrekey(ed, signedID, sp.PublicKey())
	pq := func(label string, id uint32, kind byte) (seal.PQPrekey, error) {
		dk, err := mlkem.NewDecapsulationKey768(s.fakeKey(mb, fmt.Sprintf("%s %d", label, id), 64))
		if err != nil {
			return seal.PQPrekey{}, err
		}
		return seal.NewPQPrekey(ed, id, kind, dk.EncapsulationKey()), nil
	}

	n, handed := 0, false
	if take {
		n, handed, err = s.store.TakePhantom(mb, clientOneTime)
		if errors.Is(err, store.ErrQuota) {
			// The cap on phantom records: serve it as a take the rate
			// limit refused (docs/mailbox.md §5).
			s.m.rejected("phantom_cap").Inc()
			handed, err = false, nil
		}
		if err != nil {
			return nil, err
		}
	}
	if handed {
		id := uint32(3 + n)
		ot, err := ecdh.X25519().NewPrivateKey(s.fakeKey(mb, fmt.Sprintf("one-time %d", id), 32))
		if err != nil {
			return nil, err
		}
		b.OneTime = &seal.OneTimePrekey{ID: id}
		copy(b.OneTime.Public[:], ot.PublicKey().Bytes())
	}
	if handed && n < clientPQ {
		b.PQ, err = pq("pq", uint32(3+clientOneTime+n), seal.PQOneTime)
	} else {
		b.PQ, err = pq("last resort", signedID+1, seal.PQLastResort)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}
