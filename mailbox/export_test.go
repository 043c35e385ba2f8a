package mailbox

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/sender/seal"
)

// DisableStrangerDefence restores, for the provider these settings
// configure, what a provider did before issue 15: fake bundles with
// derived prekey IDs no client makes, and answers to strangers as soon as
// they are ready. TestStrangerProbe's control runs against it.
func DisableStrangerDefence(s *Settings) { s.strangerDefenceOff = true }

// DisableReplyAuth makes the provider these settings configure store SURB
// replies without checking their SURB IDs, as before issue 16: the
// control of the forged-reply tests.
func DisableReplyAuth(s *Settings) { s.replyAuthOff = true }

// SetStrangerAnswerTime changes the answer time of the provider these
// settings configure; a negative one answers at once (fake bundles stay
// phantoms).
func SetStrangerAnswerTime(s *Settings, d time.Duration) { s.strangerAnswerTime = d }

func init() {
	legacyStranger = func(s *Service) {
		s.answerTime = 0
		s.fake = func(mb proto.MailboxID, take bool, now time.Time) (*seal.PrekeyBundle, error) {
			return s.legacyFakeBundle(mb, take, now), nil
		}
	}
}

// legacyFakeBundle is the fake bundle of before issue 15: identity and
// signed keys derived from the provider secret and the mailbox ID, a
// signed prekey ID that is the week number, one-time keys fresh under IDs
// derived from a per-mailbox base and the minute.
func (s *Service) legacyFakeBundle(mb proto.MailboxID, take bool, now time.Time) *seal.PrekeyBundle {
	derive := func(label string, n int) []byte { return s.fakeKey(mb, label, n) }
	edKey := ed25519.NewKeyFromSeed(derive("ed25519", ed25519.SeedSize))
	xKey, _ := ecdh.X25519().NewPrivateKey(derive("x25519", 32))
	b := &seal.PrekeyBundle{}
	copy(b.IdentityX25519[:], xKey.PublicKey().Bytes())
	copy(b.IdentityEd25519[:], edKey.Public().(ed25519.PublicKey))
	week := uint32(now.Unix() / (7 * 24 * 3600))
	sp, _ := ecdh.X25519().NewPrivateKey(derive(fmt.Sprintf("signed %d", week), 32))
	b.Signed = seal.NewSignedPrekey(edKey, week, sp.PublicKey())
	idBase := binary.BigEndian.Uint32(derive("ids", 4)) & 0x3fffffff
	if take {
		ot, _ := ecdh.X25519().GenerateKey(rand.Reader)
		b.OneTime = &seal.OneTimePrekey{ID: idBase + uint32(now.Unix()/60)%(1<<20)}
		copy(b.OneTime.Public[:], ot.PublicKey().Bytes())
		dk, _ := mlkem.GenerateKey768()
		b.PQ = seal.NewPQPrekey(edKey, idBase+1<<20+uint32(now.Unix()/60)%(1<<20), seal.PQOneTime, dk.EncapsulationKey())
	} else {
		dk, _ := mlkem.NewDecapsulationKey768(derive("last resort", 64))
		b.PQ = seal.NewPQPrekey(edKey, idBase+3<<20, seal.PQLastResort, dk.EncapsulationKey())
	}
	return b
}

// ClientRotation is how often phantoms rotate their signed prekey: the
// client's sender.SignedPrekeyLifetime.
const ClientRotation = clientRotation
