package sender_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mailbox/proto"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/link"
	"github.com/sealnet/sealnet/sender"
	"github.com/sealnet/sealnet/sender/seal"
)

// The tests in this file are seed 002's short-term threats that apply to
// one-to-one messages, each on a real in-process network on loopback
// (real TCP listeners, Noise links, Badger mailboxes).

// recorder keeps every byte that crosses the links it wraps, and the size
// of every write.
type recorder struct {
	mu     sync.Mutex
	all    bytes.Buffer
	writes map[int][]int
	next   int
}

type recConn struct {
	net.Conn
	r  *recorder
	id int
}

func (r *recorder) wrap(c net.Conn) net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	if r.writes == nil {
		r.writes = map[int][]int{}
	}
	return &recConn{Conn: c, r: r, id: r.next}
}

func (c *recConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.r.mu.Lock()
	c.r.all.Write(b[:n])
	c.r.mu.Unlock()
	return n, err
}

func (c *recConn) Write(b []byte) (int, error) {
	c.r.mu.Lock()
	c.r.all.Write(b)
	c.r.writes[c.id] = append(c.r.writes[c.id], len(b))
	c.r.mu.Unlock()
	return c.Conn.Write(b)
}

type recListener struct {
	net.Listener
	r *recorder
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.r.wrap(c), nil
}

// TestWireObserverSeesOnlyFixedSizeCiphertext records every link of the
// network (every byte any node reads or writes, and every byte the two
// clients write) while Alice and Bob exchange messages, and checks that
// every write after a link's handshake is a whole number of fixed-size
// frames and that no message text, address, identity key, mailbox ID or
// token appears anywhere in the bytes.
func TestWireObserverSeesOnlyFixedSizeCiphertext(t *testing.T) {
	rec := &recorder{}
	n := startNetwork(t, testnet.InProcessOptions{Listener: func(_ string, ln net.Listener) net.Listener {
		return &recListener{Listener: ln, r: rec}
	}})
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return rec.wrap(c), nil
	}
	alice := n.newUser(t, "alice@a", sender.Options{Dial: dial})
	bob := n.newUser(t, "bob@b", sender.Options{Dial: dial})
	const body, reply = "meet me at the old mill at dawn, bring the maps", "understood; the maps are ready"
	if e := alice.waitOutcome(alice.send("bob@b", body), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage(body, 30*time.Second)
	if e := bob.waitOutcome(bob.send("alice@a", reply), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("reply outcome %s: %s", e.Kind, e.Text)
	}
	alice.waitMessage(reply, 30*time.Second)
	aliceTok, bobTok := alice.c.Token(), bob.c.Token()
	alicePub, bobPub := alice.c.Public(), bob.c.Public()
	aliceCert := alice.c.Certificate()
	alice.stop()
	bob.stop()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	frame := 2 + link.FrameSize(mixnet.DefaultGeometry())
	frames := 0
	for id, ws := range rec.writes {
		// The first write of each side is its handshake message.
		for i, w := range ws[1:] {
			if w%frame != 0 {
				t.Fatalf("connection %d: write %d after the handshake has %d bytes, not a multiple of the %d-byte frame", id, i+1, w, frame)
			}
			frames += w / frame
		}
	}
	// Control: the recorder saw the traffic (a broken recorder would
	// make the checks below vacuous).
	if frames < 50 || rec.all.Len() < 50*frame {
		t.Fatalf("recorded only %d frames, %d bytes", frames, rec.all.Len())
	}
	mbA, mbB := proto.MailboxOf("alice@a"), proto.MailboxOf("bob@b")
	secrets := map[string][]byte{
		"message": []byte(body), "reply": []byte(reply), "part of the message": []byte("old mill"),
		"Alice's address": []byte("alice@a"), "Bob's address": []byte("bob@b"),
		"Alice's X25519 key": alicePub.X25519[:], "Alice's Ed25519 key": alicePub.Ed25519[:],
		"Bob's X25519 key": bobPub.X25519[:], "Bob's Ed25519 key": bobPub.Ed25519[:],
		"Alice's mailbox ID": mbA[:], "Bob's mailbox ID": mbB[:],
		"Alice's token": aliceTok[:], "Bob's token": bobTok[:],
		"Alice's certificate signature": aliceCert[len(aliceCert)-64:],
	}
	for what, s := range secrets {
		if bytes.Contains(rec.all.Bytes(), s) {
			t.Errorf("%s appears on the wire", what)
		}
	}
	t.Logf("%d connections, %d frames of %d bytes, %d bytes searched", len(rec.writes), frames, frame, rec.all.Len())
}

// nodeCounter sums a counter over every running node, e.g.
// nodeCounter(n, `sealnet_packets_dropped_total{reason="payload_invalid"}`).
func nodeCounter(t testing.TB, n *network, series string) uint64 {
	t.Helper()
	var total uint64
	for _, node := range n.p.Nodes {
		var b bytes.Buffer
		node.Metrics().WriteTo(&b)
		sc := bufio.NewScanner(&b)
		for sc.Scan() {
			name, val, ok := strings.Cut(sc.Text(), " ")
			if ok && name == series {
				// The text format writes large counters as floats (1e+06).
				v, err := strconv.ParseFloat(val, 64)
				if err != nil || v < 0 {
					t.Fatalf("metric %s: %q: %v", series, val, err)
				}
				total += uint64(v)
			}
		}
	}
	return total
}

// countReceived counts the messages with body a user was shown.
func countReceived(u *user, body string) int {
	k := 0
	for _, m := range u.received() {
		if m.Body == body {
			k++
		}
	}
	return k
}

// TestModifiedPacketRejected changes one bit of a message's packet as it
// leaves Alice: in the payload (which only the last hop can check) for
// one message, in the header (which the first mix checks) for another.
// The changed packet must be refused where it can first be checked, and
// the message must still arrive intact, once, by retransmission.
func TestModifiedPacketRejected(t *testing.T) {
	var mode atomic.Value // "payload", "header" or ""
	mode.Store("")
	var tampered atomic.Int32
	filter := func(kind string, pkt []byte) bool {
		if kind != "real" {
			return true
		}
		switch mode.Swap("") {
		case "payload":
			pkt[len(pkt)-1] ^= 0x01
			tampered.Add(1)
		case "header":
			pkt[40] ^= 0x80
			tampered.Add(1)
		}
		return true
	}
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{Filter: filter})
	bob := n.newUser(t, "bob@b", sender.Options{})

	for _, c := range []struct{ where, series, body string }{
		{"payload", `sealnet_packets_dropped_total{reason="payload_invalid"}`, "a message whose first packet was changed in its payload"},
		{"header", `sealnet_packets_dropped_total{reason="header_invalid"}`, "a message whose first packet was changed in its header"},
	} {
		before := nodeCounter(t, n, c.series)
		mode.Store(c.where)
		if e := alice.waitOutcome(alice.send("bob@b", c.body), time.Minute); e.Kind != sender.EventDelivered {
			t.Fatalf("%s: outcome %s: %s", c.where, e.Kind, e.Text)
		}
		bob.waitMessage(c.body, 30*time.Second)
		if got := nodeCounter(t, n, c.series) - before; got < 1 {
			t.Errorf("%s changed: no node refused the packet (%s went up by %d)", c.where, c.series, got)
		}
		if k := countReceived(bob, c.body); k != 1 {
			t.Errorf("%s changed: Bob was shown the message %d times", c.where, k)
		}
	}
	if tampered.Load() != 2 {
		t.Fatalf("changed %d packets, want 2", tampered.Load())
	}
}

// TestDroppedPacketRetransmitted loses a message's first packet: the
// fragment is sent again after its acknowledgement does not come, and Bob
// sees the message once.
func TestDroppedPacketRetransmitted(t *testing.T) {
	var real, dropped atomic.Int32
	filter := func(kind string, pkt []byte) bool {
		if kind == "real" && real.Add(1) == 1 {
			dropped.Add(1)
			return false
		}
		return true
	}
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{Filter: filter})
	bob := n.newUser(t, "bob@b", sender.Options{})
	const body = "this one is lost once on the way"
	if e := alice.waitOutcome(alice.send("bob@b", body), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage(body, 30*time.Second)
	if dropped.Load() != 1 || real.Load() < 2 {
		t.Fatalf("dropped %d, sent %d real packets; want the first dropped and a retransmission", dropped.Load(), real.Load())
	}
	time.Sleep(time.Second)
	if k := countReceived(bob, body); k != 1 {
		t.Fatalf("Bob was shown the message %d times", k)
	}
}

// TestLostMessageReported loses every packet of a message: after the
// bounded attempts the sender is told plainly that it was not delivered.
func TestLostMessageReported(t *testing.T) {
	var real atomic.Int32
	filter := func(kind string, pkt []byte) bool {
		if kind == "real" {
			real.Add(1)
			return false
		}
		return true
	}
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{Filter: filter}, func(p *directory.Parameters) { p.MaxAttempts = 3 })
	bob := n.newUser(t, "bob@b", sender.Options{})
	const body = "this one never arrives"
	id := alice.send("bob@b", body)
	frags := len(sealedFragments(t, alice, id))
	e := alice.waitOutcome(id, time.Minute)
	if e.Kind != sender.EventFailed || !strings.Contains(e.Text, "3 attempts") {
		t.Fatalf("outcome %s (%q); want failed after 3 attempts", e.Kind, e.Text)
	}
	if int(real.Load()) != 3*frags {
		t.Fatalf("sent %d transmissions of %d fragments, want exactly 3 each", real.Load(), frags)
	}
	hist, err := alice.c.History()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range hist {
		if m.ID == e.ID && m.Status == sender.StatusFailed && m.Body == body {
			found = true
		}
	}
	if !found {
		t.Fatalf("the history does not say the message was not delivered: %+v", hist)
	}
	if k := countReceived(bob, body); k != 0 {
		t.Fatalf("Bob was shown a message whose packets were all lost")
	}
}

// TestReplayDroppedAndNotShownTwice replays a message twice: the exact
// packet again into the mix network (the entry mix's replay cache drops
// it), and its sealed envelope again straight to Bob's provider under a
// new envelope ID (stored, but Bob's client recognises it, also after a
// restart). Bob is shown the message once.
func TestReplayDroppedAndNotShownTwice(t *testing.T) {
	var mu sync.Mutex
	var captured [][]byte
	filter := func(kind string, pkt []byte) bool {
		if kind == "real" {
			mu.Lock()
			captured = append(captured, bytes.Clone(pkt))
			mu.Unlock()
		}
		return true
	}
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{Filter: filter})
	bob := n.newUser(t, "bob@b", sender.Options{})
	if e := alice.waitOutcome(alice.send("bob@b", "first contact"), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage("first contact", 30*time.Second)
	// Bob replies, so Alice learns his token and her session is confirmed.
	bob.waitOutcome(bob.send("alice@a", "ack"), time.Minute)
	alice.waitMessage("ack", 30*time.Second)

	const body = "say this only once"
	id := alice.send("bob@b", body)
	var blob, eid []byte
	for _, o := range alice.c.Outbox() {
		if hex.EncodeToString(o.ID) == id && len(o.Fragments) == 1 {
			blob, eid = o.Fragments[0].Blob, o.Fragments[0].EnvelopeID
		}
	}
	if blob == nil {
		t.Fatal("the message was not sealed at once on the existing session")
	}
	if e := alice.waitOutcome(id, time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage(body, 30*time.Second)

	// 1. The same packets again, into every entry mix.
	doc, err := n.nw.WaitDocument(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := nodeCounter(t, n, "sealnet_packets_replayed_total")
	mu.Lock()
	pkts := captured
	mu.Unlock()
	inj := testnet.NewInjector(doc.Doc)
	defer inj.Close()
	for _, mix := range doc.Doc.Layers[0] {
		for _, p := range pkts {
			if err := inj.Send(context.Background(), mix.ID(), p); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for nodeCounter(t, n, "sealnet_packets_replayed_total")-before < uint64(len(pkts)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := nodeCounter(t, n, "sealnet_packets_replayed_total") - before; got < uint64(len(pkts)) {
		t.Fatalf("relays refused %d of %d replayed packets as replays", got, len(pkts))
	}

	// 2. The envelope again, to Bob's provider, as a new delivery: with
	// Bob's client restarted, so that only the session's used message key
	// (and the shown-once record) can recognise it.
	bob.stop()
	var tok [32]byte
	for _, ct := range alice.c.Contacts() {
		if ct.Address == "bob@b" {
			copy(tok[:], ct.Token)
		}
	}
	pb, _ := doc.Doc.Provider("b")
	mc, err := proto.Dial(context.Background(), mixnet.DefaultGeometry(), pb.Address, pb.LinkKey, proto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	var newID [16]byte
	rand.Read(newID[:])
	if bytes.Equal(newID[:], eid) {
		t.Fatal("unlucky")
	}
	if code, err := mc.Deliver(context.Background(), proto.MailboxOf("bob@b"), newID, tok, blob); err != nil || code != proto.StatusOK {
		t.Fatalf("direct replay: %v %v (want it stored, so that Bob's client must catch it)", code, err)
	}
	bob.open(sender.Options{})
	bob.start()
	// A later message proves Bob fetched past the replay.
	if e := alice.waitOutcome(alice.send("bob@b", "after the replay"), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage("after the replay", 30*time.Second)
	if k := countReceived(bob, body); k != 1 {
		t.Fatalf("Bob was shown the replayed message %d times", k)
	}
}

// sealedFragments waits until message id of u is sealed and returns its
// fragment blobs.
func sealedFragments(t *testing.T, u *user, id string) [][]byte {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, o := range u.c.Outbox() {
			if hex.EncodeToString(o.ID) == id && len(o.Fragments) > 0 {
				var out [][]byte
				for _, f := range o.Fragments {
					out = append(out, bytes.Clone(f.Blob))
				}
				return out
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the message was never sealed")
	return nil
}

// plaintext is the client's message plaintext (sender/prekeys.go), built
// here to forge messages.
func plaintext(body string) []byte {
	b := []byte{1}
	id := make([]byte, 16)
	rand.Read(id)
	b = append(b, id...)
	b = binary.BigEndian.AppendUint64(b, uint64(time.Now().UnixMilli()))
	b = append(b, make([]byte, 32)...)
	return append(b, body...)
}

// deliverSealed seals body from identity me with certificate cert to
// Bob, on a new session from Bob's bundle, and delivers it to Bob's
// provider directly (an anonymous sender with no token).
func deliverSealed(t *testing.T, doc *directory.Document, me *seal.Identity, cert []byte, body string) {
	t.Helper()
	ctx := context.Background()
	pb, _ := doc.Provider("b")
	mc, err := proto.Dial(ctx, mixnet.DefaultGeometry(), pb.Address, pb.LinkKey, proto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	bundle, err := mc.Bundle(ctx, proto.MailboxOf("bob@b"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := seal.Initiate(rand.Reader, me, bundle)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := sess.Seal(rand.Reader, plaintext(body))
	if err != nil {
		t.Fatal(err)
	}
	var mid [16]byte
	rand.Read(mid[:])
	bobPub := seal.PublicIdentity{X25519: bundle.IdentityX25519, Ed25519: bundle.IdentityEd25519}
	blobs, err := seal.SealEnvelope(rand.Reader, bobPub, cert, sm, mid, proto.MaxMixEnvelope(mixnet.DefaultGeometry()))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blobs {
		if code, err := mc.Deliver(ctx, proto.MailboxOf("bob@b"), seal.EnvelopeID(mid, i), [32]byte{}, b); err != nil || code != proto.StatusAccepted {
			t.Fatalf("deliver: %v %v", code, err)
		}
	}
}

// TestForgedSenderFailsCertificateCheck has Mallory, a registered user of
// provider a, send Bob messages that claim to come from alice@a: with
// Alice's real certificate (which Mallory may have seen) around Mallory's
// own session keys, and with a certificate for alice@a that Mallory signed
// herself. Bob's client refuses both and shows nothing; the same path with
// Mallory's own certificate (the control) is shown, as from mallory@a.
func TestForgedSenderFailsCertificateCheck(t *testing.T) {
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{})
	bob := n.newUser(t, "bob@b", sender.Options{})
	mallory := n.newUser(t, "mallory@a", sender.Options{})
	if e := alice.waitOutcome(alice.send("bob@b", "hi, it is Alice"), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage("hi, it is Alice", 30*time.Second)
	doc, err := n.nw.WaitDocument(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mal := mallory.c.Steal().ID // Mallory's own keys

	// Forgery 1: Alice's certificate, Mallory's keys.
	deliverSealed(t, doc.Doc, mal, alice.c.Certificate(), "forged with Alice's certificate")
	// Forgery 2: a certificate for alice@a with Mallory's keys, signed by
	// a key of Mallory's instead of provider a's.
	_, fakeProvider, _ := ed25519.GenerateKey(rand.Reader)
	mp := mal.Public()
	fake, err := seal.SignCertificate(seal.Certificate{Address: "alice@a", IdentityX25519: mp.X25519, IdentityEd25519: mp.Ed25519,
		Expires: time.Now().Add(time.Hour).Truncate(time.Hour)}, fakeProvider)
	if err != nil {
		t.Fatal(err)
	}
	deliverSealed(t, doc.Doc, mal, fake, "forged with a self-made certificate")
	// Control: Mallory as herself.
	deliverSealed(t, doc.Doc, mal, mallory.c.Certificate(), "Mallory, honestly")

	m := bob.waitMessage("Mallory, honestly", 30*time.Second)
	if m.From != "mallory@a" || !m.Verified {
		t.Fatalf("control message shown as %+v", m)
	}
	for _, r := range bob.received() {
		if strings.HasPrefix(r.Body, "forged") {
			t.Fatalf("Bob was shown a forged message: %+v", r)
		}
	}
	if s := bob.c.Stats(); s.Refused != 2 {
		t.Fatalf("Bob's client refused %d messages, want the 2 forgeries", s.Refused)
	}
}

// TestStolenKeysAfterReadDoNotDecrypt records the envelopes of two
// messages to Bob (the first, on a one-time prekey, and a later one), lets
// Bob read them, then copies all of Bob's keys, passphrase and all: the
// copy decrypts neither recorded message. The control, a copy taken
// before each message was read, decrypts it.
func TestStolenKeysAfterReadDoNotDecrypt(t *testing.T) {
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{})
	bob := n.newUser(t, "bob@b", sender.Options{})
	doc, err := n.nw.WaitDocument(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	verify := func(cert []byte) (*seal.Certificate, error) {
		pa, _ := doc.Doc.Provider("a")
		return seal.VerifyCertificate(cert, pa.IdentityKey, "a", time.Now())
	}
	open := func(th *sender.Thief, blobs [][]byte) (string, error) {
		r := seal.NewReassembler()
		for _, b := range blobs {
			f, err := seal.OpenFragment(th.ID, b)
			if err != nil {
				return "", err
			}
			inner, done, err := r.Add(f)
			if err != nil {
				return "", err
			}
			if done {
				op, err := seal.Open(th.ID, th.Prekeys, th.Lookup, verify, inner)
				if err != nil {
					return "", err
				}
				return string(op.Plaintext[57:]), nil
			}
		}
		return "", errors.New("incomplete")
	}
	for i, body := range []string{"the first message, on a one-time prekey", "a later message on the same session"} {
		before := bob.c.Steal()
		id := alice.send("bob@b", body)
		blobs := sealedFragments(t, alice, id) // what a recording adversary keeps
		if e := alice.waitOutcome(id, time.Minute); e.Kind != sender.EventDelivered {
			t.Fatalf("outcome %s: %s", e.Kind, e.Text)
		}
		bob.waitMessage(body, 30*time.Second)
		after := bob.c.Steal()
		if _, err := open(after, blobs); !errors.Is(err, seal.ErrReplay) {
			t.Errorf("message %d: keys stolen after reading, with the session: %v; want the message key gone", i+1, err)
		}
		// A thief need not use the session: with the prekeys alone, the
		// key agreement must fail too.
		after.Lookup = func([16]byte) (*seal.Session, bool) { return nil, false }
		if _, err := open(after, blobs); !errors.Is(err, seal.ErrUnknownPrekey) {
			t.Errorf("message %d: keys stolen after reading, prekeys only: %v; want the one-time prekey gone", i+1, err)
		}
		if got, err := open(before, blobs); err != nil || got != body {
			t.Errorf("control, message %d: keys stolen before reading give %q, %v", i+1, got, err)
		}
	}
}

// TestChangedIdentityWarns: Bob loses his device and his provider moves
// bob@b to the new device's keys. When the new Bob writes, Alice is warned
// in plain words naming bob@b, the message is marked unverified, and
// sending to bob@b stops until Alice trusts the new key; then it works.
func TestChangedIdentityWarns(t *testing.T) {
	n := startNetwork(t, testnet.InProcessOptions{})
	alice := n.newUser(t, "alice@a", sender.Options{})
	bob := n.newUser(t, "bob@b", sender.Options{})
	if e := alice.waitOutcome(alice.send("bob@b", "hello old Bob"), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	bob.waitMessage("hello old Bob", 30*time.Second)
	bob.stop()

	bob2 := n.initUser(t, "bob@b")
	bob2.open(sender.Options{})
	pub := bob2.c.Public()
	if err := n.p.Providers["provider-b"].Store.ReplaceIdentity(proto.MailboxOf("bob@b"), pub.X25519, pub.Ed25519); err != nil {
		t.Fatal(err)
	}
	bob2.register()
	bob2.start()
	if e := bob2.waitOutcome(bob2.send("alice@a", "it is Bob, on a new phone"), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("outcome %s: %s", e.Kind, e.Text)
	}
	m := alice.waitMessage("it is Bob, on a new phone", 30*time.Second)
	if m.Verified || !strings.Contains(m.Warning, "bob@b") {
		t.Fatalf("message from the changed identity shown as %+v", m)
	}
	if _, ok := alice.waitEvent(time.Second, func(e sender.Event) bool {
		return e.Kind == sender.EventWarning && strings.Contains(e.Text, "identity key of bob@b has changed")
	}); !ok {
		t.Fatal("no warning event naming bob@b")
	}
	_, err := alice.c.Queue("bob@b", []byte("are you really Bob?"), sender.RouteMix)
	if !errors.Is(err, sender.ErrIdentityChanged) || !strings.Contains(err.Error(), "sealnet contacts trust bob@b") {
		t.Fatalf("sending to the changed contact: %v; want ErrIdentityChanged telling what to do", err)
	}
	var ct sender.Contact
	for _, c := range alice.c.Contacts() {
		if c.Address == "bob@b" {
			ct = c
		}
	}
	if !ct.Changed() || ct.PendingFingerprint() != pub.Fingerprint() || ct.Fingerprint() == pub.Fingerprint() {
		t.Fatalf("contact after the change: %+v", ct)
	}
	if err := alice.c.Trust("bob@b"); err != nil {
		t.Fatal(err)
	}
	if e := alice.waitOutcome(alice.send("bob@b", "welcome back"), time.Minute); e.Kind != sender.EventDelivered {
		t.Fatalf("after trust: outcome %s: %s", e.Kind, e.Text)
	}
	if m := bob2.waitMessage("welcome back", 30*time.Second); !m.Verified || m.From != "alice@a" {
		t.Fatalf("new Bob got %+v", m)
	}
}
