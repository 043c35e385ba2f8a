package seal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// fragmentSize is what the client uses: the largest envelope a mix-network
// delivery carries with the default geometry (mailbox/proto.MaxMixEnvelope,
// which imports this package; mailbox's TestMixEnvelopeIsAFragment holds
// the two to this figure).
const fragmentSize = 1388

// sealRand is what the tests' Seal calls read their salts from (safe for
// concurrent use, unlike a world's rng).
var sealRand io.Reader = crand.Reader

// testRand returns a deterministic random source for test name.
func testRand(name string) io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte("sealnet seal test rng " + name)))
}

// fuzzSeed and fuzzIdentity must match internal/cmd/testdatagen/seal.go:
// the fuzz seeds are real fragments for this identity.
func fuzzSeed(label string) []byte {
	s := sha256.Sum256([]byte("sealnet seal fuzz " + label))
	return s[:]
}

func fuzzIdentity() *Identity {
	b := append([]byte{identityVersion}, fuzzSeed("identity x25519")...)
	id, err := UnmarshalIdentity(append(b, fuzzSeed("identity ed25519")...))
	if err != nil {
		panic(err)
	}
	return id
}

// sentinels are the errors every error of the package must wrap one of.
var sentinels = []error{ErrMalformed, ErrAuth, ErrReplay, ErrGap, ErrUnknownSession, ErrUnknownPrekey,
	ErrSenderMismatch, ErrCertificate, ErrBundle, ErrTooLarge, ErrDuplicate}

func requireSentinel(t testing.TB, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error without a sentinel: %v", err)
}

// world is a provider and its users.
type world struct {
	t        testing.TB
	rng      io.Reader
	provider ed25519.PrivateKey
	domain   string
	now      time.Time
}

func newWorld(t testing.TB) *world {
	rng := testRand(t.Name())
	seed := make([]byte, ed25519.SeedSize)
	io.ReadFull(rng, seed)
	return &world{t: t, rng: rng, provider: ed25519.NewKeyFromSeed(seed), domain: "b.example", now: time.Now()}
}

// verify is the callback a client passes to Open: the certificate must be
// signed by this world's provider, for its domain, and current.
func (w *world) verify(cert []byte) (*Certificate, error) {
	return VerifyCertificate(cert, w.provider.Public().(ed25519.PublicKey), w.domain, w.now)
}

type user struct {
	w        *world
	name     string
	id       *Identity
	cert     []byte
	prekeys  *prekeyStore
	sessions *sessionStore
	nextID   uint32
}

func (w *world) user(name string) *user {
	w.t.Helper()
	id, err := GenerateIdentity(w.rng)
	if err != nil {
		w.t.Fatal(err)
	}
	u := &user{w: w, name: name, id: id, prekeys: newPrekeyStore(), sessions: &sessionStore{m: map[[16]byte]*Session{}}, nextID: 1}
	u.cert = w.certificate(name, id.Public())
	return u
}

func (w *world) certificate(name string, p PublicIdentity) []byte {
	w.t.Helper()
	cert, err := SignCertificate(Certificate{
		Address:         name + "@" + w.domain,
		IdentityX25519:  p.X25519,
		IdentityEd25519: p.Ed25519,
		Expires:         w.now.Add(time.Hour),
	}, w.provider)
	if err != nil {
		w.t.Fatal(err)
	}
	return cert
}

// bundle makes fresh prekeys (signed, optionally one-time, and a PQ key of
// the given kind), keeps their private halves and returns the bundle.
func (u *user) bundle(oneTime bool, pqKind byte) *PrekeyBundle {
	u.w.t.Helper()
	b := &PrekeyBundle{}
	p := u.id.Public()
	b.IdentityX25519, b.IdentityEd25519 = p.X25519, p.Ed25519
	spk := u.x25519()
	b.Signed = NewSignedPrekey(u.id.Ed25519, u.nextID, spk.PublicKey())
	u.prekeys.signed[u.nextID] = spk
	u.nextID++
	if oneTime {
		opk := u.x25519()
		b.OneTime = &OneTimePrekey{ID: u.nextID, Public: [32]byte(opk.PublicKey().Bytes())}
		u.prekeys.oneTime[u.nextID] = opk
		u.nextID++
	}
	seed := make([]byte, mlkem.SeedSize)
	io.ReadFull(u.w.rng, seed)
	dk, err := mlkem.NewDecapsulationKey768(seed)
	if err != nil {
		u.w.t.Fatal(err)
	}
	b.PQ = NewPQPrekey(u.id.Ed25519, u.nextID, pqKind, dk.EncapsulationKey())
	u.prekeys.pq[u.nextID] = pqKey{dk, pqKind}
	u.nextID++
	return b
}

func (u *user) x25519() *ecdh.PrivateKey {
	b := make([]byte, 32)
	io.ReadFull(u.w.rng, b)
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		u.w.t.Fatal(err)
	}
	return k
}

// initiate starts a session with to from a fresh bundle of to's.
func (u *user) initiate(to *user) *Session {
	u.w.t.Helper()
	s, err := Initiate(u.w.rng, u.id, to.bundle(true, PQOneTime))
	if err != nil {
		u.w.t.Fatal(err)
	}
	u.sessions.put(s)
	return s
}

// seal seals plaintext on s and returns the fragment blobs for to.
func (u *user) seal(s *Session, to *user, plaintext string) [][]byte {
	u.w.t.Helper()
	msg, err := s.Seal(sealRand, []byte(plaintext))
	if err != nil {
		u.w.t.Fatal(err)
	}
	return u.envelope(msg, to)
}

// envelope fragments a session message for to under u's certificate.
func (u *user) envelope(msg []byte, to *user) [][]byte {
	u.w.t.Helper()
	var mid [16]byte
	io.ReadFull(u.w.rng, mid[:])
	blobs, err := SealEnvelope(u.w.rng, to.id.Public(), u.cert, msg, mid, fragmentSize)
	if err != nil {
		u.w.t.Fatal(err)
	}
	return blobs
}

// receive opens the fragments of one message as a client would: each
// blob, the reassembler, then Open with the user's sessions and prekeys.
// On success it stores the session and deletes the used prekeys.
func (u *user) receive(blobs [][]byte) (*Opened, error) {
	inner, err := reassemble(u.id, blobs)
	if err != nil {
		return nil, err
	}
	return u.open(inner)
}

func (u *user) open(inner []byte) (*Opened, error) {
	o, err := Open(u.id, u.prekeys, u.sessions.lookup, u.w.verify, inner)
	if err != nil {
		return nil, err
	}
	u.sessions.put(o.Session)
	u.prekeys.consume(o)
	return o, nil
}

func (u *user) mustReceive(blobs [][]byte, want string) *Opened {
	u.w.t.Helper()
	o, err := u.receive(blobs)
	if err != nil {
		u.w.t.Fatalf("%s: %v", u.name, err)
	}
	if string(o.Plaintext) != want {
		u.w.t.Fatalf("%s: got %q, want %q", u.name, o.Plaintext, want)
	}
	return o
}

func reassemble(me *Identity, blobs [][]byte) ([]byte, error) {
	r := NewReassembler()
	for i, b := range blobs {
		f, err := OpenFragment(me, b)
		if err != nil {
			return nil, err
		}
		inner, complete, err := r.Add(f)
		if err != nil {
			return nil, err
		}
		if complete != (i == len(blobs)-1) {
			return nil, fmt.Errorf("fragment %d of %d: complete = %v", i, len(blobs), complete)
		}
		if complete {
			return inner, nil
		}
	}
	return nil, errors.New("no fragments")
}

// innerOf returns the sealed inner message a user would send (without
// fragmenting), for tests of Open alone.
func innerOf(cert, msg []byte) []byte { return appendInner(nil, cert, msg) }

type sessionStore struct {
	mu sync.Mutex
	m  map[[16]byte]*Session
}

func (s *sessionStore) lookup(id [16]byte) (*Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.m[id]
	return x, ok
}

func (s *sessionStore) put(x *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[x.ID()] = x
}

func noSessions([16]byte) (*Session, bool) { return nil, false }

type pqKey struct {
	dk   *mlkem.DecapsulationKey768
	kind byte
}

// prekeyStore is a client's prekey private keys.
type prekeyStore struct {
	mu      sync.Mutex
	signed  map[uint32]*ecdh.PrivateKey
	oneTime map[uint32]*ecdh.PrivateKey
	pq      map[uint32]pqKey
}

func newPrekeyStore() *prekeyStore {
	return &prekeyStore{signed: map[uint32]*ecdh.PrivateKey{}, oneTime: map[uint32]*ecdh.PrivateKey{}, pq: map[uint32]pqKey{}}
}

func (p *prekeyStore) Signed(id uint32) (*ecdh.PrivateKey, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.signed[id]
	return k, ok
}

func (p *prekeyStore) OneTime(id uint32) (*ecdh.PrivateKey, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.oneTime[id]
	return k, ok
}

func (p *prekeyStore) PQ(id uint32) (*mlkem.DecapsulationKey768, byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.pq[id]
	return k.dk, k.kind, ok
}

// consume deletes what Opened says was used.
func (p *prekeyStore) consume(o *Opened) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o.UsedOneTime != nil {
		delete(p.oneTime, *o.UsedOneTime)
	}
	if o.UsedPQ != nil {
		if p.pq[*o.UsedPQ].kind != PQOneTime {
			panic("Opened names a last-resort key as used")
		}
		delete(p.pq, *o.UsedPQ)
	}
}

// clone copies the store (what an attacker who copies the disk gets).
func (p *prekeyStore) clone() *prekeyStore {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &prekeyStore{signed: maps.Clone(p.signed), oneTime: maps.Clone(p.oneTime), pq: maps.Clone(p.pq)}
}

// cloneSession copies a session through its encoding.
func cloneSession(t testing.TB, s *Session) *Session {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c, err := UnmarshalSession(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func lookupOnly(s *Session) func([16]byte) (*Session, bool) {
	return func(id [16]byte) (*Session, bool) {
		if s != nil && id == s.ID() {
			return s, true
		}
		return nil, false
	}
}
