// Command testdatagen is the module's one generator of test vectors and
// fuzz seed corpora: the packet vectors (mixnet/testdata/vectors.json),
// the corpora of every fuzz target, and, by running their
// TestFuzzSeedsCurrent in write mode, those of the packages that build
// seeds from their own unexported encoders (packages.go). Everything it
// writes is derived from fixed seeds, so running it again reproduces the
// same files byte for byte; TestCommittedTestdataIsCurrent, and each
// package's TestFuzzSeedsCurrent, fail when a committed file differs:
//
//	make testdata        (go run ./internal/cmd/testdatagen -root .)
//
// It uses only the exported API of the packages, and writes what the
// specifications define from the specifications (routing slots from
// docs/packet.md, broken directory objects from docs/directory.md), not
// through the package's encoder.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/sealnet/sealnet/internal/testkit/fuzzcheck"
	"github.com/sealnet/sealnet/internal/testkit/linktest"
	"github.com/sealnet/sealnet/mixnet"
	"github.com/sealnet/sealnet/mixnet/link"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		log.Fatal(err)
	}
	pkgs, err := seedWritingPackages(*root)
	if err != nil {
		log.Fatal(err)
	}
	if err := writePackageSeeds(*root, pkgs); err != nil {
		log.Fatal(err)
	}
}

// recorder is a deterministic io.Reader that remembers what it handed out.
type recorder struct {
	r   *rand.ChaCha8
	log bytes.Buffer
}

func newRecorder(seed string) *recorder {
	return &recorder{r: rand.NewChaCha8(sha256.Sum256([]byte(seed)))}
}

func (rc *recorder) Read(p []byte) (int, error) {
	n, _ := rc.r.Read(p)
	rc.log.Write(p[:n])
	return n, nil
}

func (rc *recorder) take() string {
	s := hex.EncodeToString(rc.log.Bytes())
	rc.log.Reset()
	return s
}

type node struct {
	key *mixnet.MixKey
	id  mixnet.NodeID
}

func newNode(seed string) (*node, error) {
	priv := sha256.Sum256([]byte(seed))
	k, err := mixnet.NewMixKey(mixnet.DefaultGeometry(), priv[:])
	if err != nil {
		return nil, err
	}
	pub := k.PublicKey()
	return &node{key: k, id: mixnet.NodeID(sha256.Sum256(pub[:]))}, nil
}

type jsonNode struct {
	ID         string `json:"id"`
	PrivateKey string `json:"private_key"`
	PublicKey  string `json:"public_key"`
}

type jsonHop struct {
	ReplayTag string `json:"replay_tag"`
	DelayUS   int64  `json:"delay_us"`
	NextHop   string `json:"next_hop,omitempty"`
	Output    string `json:"output,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	SURBID    string `json:"surb_id,omitempty"`
	Payload   string `json:"payload,omitempty"`
}

type vector struct {
	Name       string     `json:"name"`
	Comment    string     `json:"comment"`
	Nodes      []jsonNode `json:"nodes"`
	DelaysUS   []int64    `json:"delays_us"`
	Recipient  string     `json:"recipient"`
	Message    string     `json:"message"`
	Randomness string     `json:"randomness"`
	Packet     string     `json:"packet"`
	Hops       []jsonHop  `json:"hops"`
	// SURB vectors only.
	SURB     string `json:"surb,omitempty"`
	SURBKeys string `json:"surb_keys,omitempty"`
	Opened   string `json:"opened,omitempty"`
}

type vectorFile struct {
	Comment  string   `json:"comment"`
	Geometry any      `json:"geometry"`
	Vectors  []vector `json:"vectors"`
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func makeVector(name, comment string, nodes []*node, delays []time.Duration, recipient mixnet.RecipientID, msg []byte, surb bool) (vector, [][]byte, error) {
	g := mixnet.DefaultGeometry()
	v := vector{Name: name, Comment: comment, Recipient: hx(recipient[:]), Message: hx(msg)}
	path := make([]mixnet.Hop, len(nodes))
	for i, n := range nodes {
		pub := n.key.PublicKey()
		v.Nodes = append(v.Nodes, jsonNode{ID: hx(n.id[:]), PrivateKey: hx(n.key.Bytes()), PublicKey: hx(pub[:])})
		path[i] = mixnet.Hop{ID: n.id, PublicKey: pub, Delay: delays[i]}
		v.DelaysUS = append(v.DelaysUS, delays[i].Microseconds())
	}
	rng := newRecorder("sealnet vector " + name)
	var pkt []byte
	var keys *mixnet.SURBKeys
	if surb {
		s, k, err := mixnet.NewSURB(rng, g, path, recipient)
		if err != nil {
			return v, nil, err
		}
		keys = k
		sb, _ := s.MarshalBinary()
		kb, _ := k.MarshalBinary()
		v.SURB, v.SURBKeys = hx(sb), hx(kb)
		if pkt, err = s.NewReply(g, msg); err != nil {
			return v, nil, err
		}
	} else {
		var err error
		if pkt, err = mixnet.NewPacket(rng, g, path, recipient, msg); err != nil {
			return v, nil, err
		}
	}
	v.Randomness = rng.take()
	v.Packet = hx(pkt)
	inputs := [][]byte{bytes.Clone(pkt)}
	for i, n := range nodes {
		rc, err := mixnet.NewReplayCache(0, 16)
		if err != nil {
			return v, nil, err
		}
		res, err := n.key.Unwrap(pkt, rc)
		if err != nil {
			return v, nil, fmt.Errorf("%s hop %d: %w", name, i, err)
		}
		h := jsonHop{ReplayTag: hx(res.Tag[:]), DelayUS: res.Delay.Microseconds()}
		if res.Final {
			h.Recipient, h.Payload = hx(res.Recipient[:]), hx(res.Payload)
			if res.SURBReply {
				h.SURBID = hx(res.SURBID[:])
				opened, err := keys.Open(bytes.Clone(res.Payload))
				if err != nil {
					return v, nil, err
				}
				v.Opened = hx(opened)
			}
		} else {
			h.NextHop, h.Output = hx(res.NextHop[:]), hx(res.Packet)
			pkt = res.Packet
			inputs = append(inputs, bytes.Clone(pkt))
		}
		v.Hops = append(v.Hops, h)
	}
	return v, inputs, nil
}

func run(root string) error {
	if err := writeDirectorySeeds(root); err != nil {
		return err
	}
	if err := writeSealSeeds(root); err != nil {
		return err
	}
	if err := writeProtoSeeds(root); err != nil {
		return err
	}
	if err := writeStoreSeeds(root); err != nil {
		return err
	}
	g := mixnet.DefaultGeometry()
	var nodes []*node
	for i := range g.MaxHops {
		n, err := newNode(fmt.Sprintf("sealnet vector node %d", i))
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	fullMsg := make([]byte, g.MessageSize())
	rand.NewChaCha8(sha256.Sum256([]byte("sealnet vector message"))).Read(fullMsg)

	vf := vectorFile{
		Comment: "Sphinx packet vectors for sealnet packet version 1, written by internal/cmd/testdatagen. " +
			"'randomness' is every byte the construction read from its random source, in order (docs/packet.md).",
		Geometry: map[string]any{
			"version": g.Version, "max_hops": g.MaxHops, "routing_info_size": g.RoutingInfoSize,
			"payload_size": g.PayloadSize, "packet_size": g.PacketSize(), "hash": g.Hash().String(),
		},
	}
	type spec struct {
		name, comment string
		nodes         []*node
		delays        []time.Duration
		msg           []byte
		surb          bool
	}
	specs := []spec{
		{"forward-1-hop", "one hop: the first hop is the final hop", nodes[:1], []time.Duration{0}, []byte("one hop"), false},
		{"forward-3-hops", "three hops with per-hop delays", nodes[:3], []time.Duration{250 * time.Millisecond, 1500 * time.Microsecond, 0}, []byte("three hops"), false},
		{"forward-5-hops-full", "a full-length path and a full-size message", nodes, []time.Duration{1, 2, 3, 4, 5}, fullMsg, false},
		{"surb-reply-3-hops", "a reply sent with a SURB; randomness covers NewSURB only (NewReply reads none)", nodes[:3], []time.Duration{0, 0, 0}, []byte("delivered"), true},
	}
	var fuzzUnwrap [][]byte
	for _, s := range specs {
		recipient := mixnet.RecipientID(sha256.Sum256([]byte("recipient " + s.name)))
		v, inputs, err := makeVector(s.name, s.comment, s.nodes, s.delays, recipient, s.msg, s.surb)
		if err != nil {
			return err
		}
		vf.Vectors = append(vf.Vectors, v)
		fuzzUnwrap = append(fuzzUnwrap, inputs...)
	}
	out, err := json.MarshalIndent(vf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "mixnet", "testdata"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "mixnet", "testdata", "vectors.json"), append(out, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeCorpora(root, fuzzUnwrap); err != nil {
		return err
	}
	return writeLinkCorpora(root)
}

// writeLinkCorpora records real sessions of the deterministic link pairs
// that mixnet/link's fuzz targets rebuild (seeds in mixnet/link/fuzz_test.go).
func writeLinkCorpora(root string) error {
	g := mixnet.DefaultGeometry()
	dir := filepath.Join(root, "mixnet", "link")
	for _, target := range []string{"FuzzFrames", "FuzzHandshake"} {
		if err := os.RemoveAll(filepath.Join(dir, "testdata", "fuzz", target)); err != nil {
			return err
		}
	}
	s, err := linktest.Pair(g, link.KindPeer, "fuzz frames")
	if err != nil {
		return err
	}
	go func() {
		for {
			if _, err := s.Listener.ReadPacket(); err != nil {
				return
			}
		}
	}()
	pkt := func(b byte) []byte { return bytes.Repeat([]byte{b}, g.PacketSize()) }
	for _, write := range []func() error{
		func() error { return s.Dialer.WritePacket(pkt(1)) },
		func() error { return s.Dialer.WritePadding() },
		func() error { return s.Dialer.WritePacket(pkt(2)) },
	} {
		if err := write(); err != nil {
			return err
		}
	}
	stream := s.Sent()
	s.Close()
	rec := 2 + link.FrameSize(g)
	frames := map[string][]byte{
		"packet-padding-packet": stream,
		"one-frame":             stream[:rec],
		"truncated":             stream[:rec+100],
		"bad-length":            append([]byte{0x0a, 0x00}, stream[2:rec]...),
		"empty":                 nil,
	}
	for name, b := range frames {
		if err := fuzzcheck.WriteSeed(dir, "FuzzFrames", name, b); err != nil {
			return err
		}
	}
	for _, kind := range []link.Kind{link.KindPeer, link.KindClient} {
		hs, err := linktest.Pair(g, kind, "fuzz handshake")
		if err != nil {
			return err
		}
		hs.Close()
		name := "peer"
		if kind == link.KindClient {
			name = "client"
		}
		if err := fuzzcheck.WriteSeed(dir, "FuzzHandshake", name, hs.Handshake); err != nil {
			return err
		}
		if err := fuzzcheck.WriteSeed(dir, "FuzzHandshake", name+"-truncated", hs.Handshake[:len(hs.Handshake)/2]); err != nil {
			return err
		}
		// Message 1 alone, as a replayer who recorded it sends it: it
		// must fail, for want of the confirmation frame.
		msg1 := 3 + int(binary.BigEndian.Uint16(hs.Handshake[1:]))
		if err := fuzzcheck.WriteSeed(dir, "FuzzHandshake", name+"-message1-only", hs.Handshake[:msg1]); err != nil {
			return err
		}
	}
	return fuzzcheck.WriteSeed(dir, "FuzzHandshake", "unknown-kind", []byte{0x09, 0x00, 0x20})
}

func writeCorpora(root string, packets [][]byte) error {
	mixnetDir := filepath.Join(root, "mixnet")
	g := mixnet.DefaultGeometry()
	seeds := map[string]map[string][]byte{}
	add := func(target, name string, b []byte) {
		if seeds[target] == nil {
			seeds[target] = map[string][]byte{}
		}
		seeds[target][name] = b
	}

	// FuzzUnwrap: packets built for the fuzz key (see mixnet/fuzz_test.go),
	// then damaged variants.
	fuzzSeed := sha256.Sum256([]byte("sealnet fuzz mix key"))
	fuzzKey, err := mixnet.NewMixKey(g, fuzzSeed[:])
	if err != nil {
		return err
	}
	fuzzPub := fuzzKey.PublicKey()
	other, err := newNode("sealnet fuzz other node")
	if err != nil {
		return err
	}
	fuzzPath := []mixnet.Hop{
		{ID: mixnet.NodeID{'f'}, PublicKey: fuzzPub, Delay: time.Millisecond},
		{ID: other.id, PublicKey: other.key.PublicKey()},
		{ID: other.id, PublicKey: other.key.PublicKey()},
	}
	rng := newRecorder("sealnet fuzz packets")
	fwd3, err := mixnet.NewPacket(rng, g, fuzzPath, mixnet.RecipientID{'r'}, []byte("fuzz"))
	if err != nil {
		return err
	}
	fwd1, err := mixnet.NewPacket(rng, g, fuzzPath[:1], mixnet.RecipientID{'r'}, []byte("fuzz"))
	if err != nil {
		return err
	}
	surb, _, err := mixnet.NewSURB(rng, g, fuzzPath[:1], mixnet.RecipientID{'s'})
	if err != nil {
		return err
	}
	reply, err := surb.NewReply(g, []byte("ack"))
	if err != nil {
		return err
	}
	add("FuzzUnwrap", "forward-3-hops", fwd3)
	add("FuzzUnwrap", "forward-1-hop", fwd1)
	add("FuzzUnwrap", "surb-reply", reply)
	add("FuzzUnwrap", "empty", nil)
	add("FuzzUnwrap", "truncated", fwd3[:g.HeaderSize()])
	add("FuzzUnwrap", "oversized", append(bytes.Clone(fwd1), 0))
	badVersion := bytes.Clone(fwd1)
	badVersion[0] = 2
	add("FuzzUnwrap", "version-2", badVersion)
	// Two packets for other keys, to start the header-failure paths.
	for i, p := range packets[:2] {
		add("FuzzUnwrap", fmt.Sprintf("vector-%02d-other-key", i), p)
	}

	// FuzzRouting: slots written from the documented format.
	r := g.RoutingInfoSize
	slot := func(cmds ...[]byte) []byte {
		s := make([]byte, 0, r)
		for _, c := range cmds {
			s = append(s, c...)
		}
		return append(s, make([]byte, r-len(s))...)
	}
	cmd := func(t byte, body ...byte) []byte { return append([]byte{t}, body...) }
	b32 := func(c byte) []byte { return bytes.Repeat([]byte{c}, 32) }
	delay := binary.BigEndian.AppendUint32(nil, 250000)
	nextHop := cmd(0x01, append(append(b32(1), b32(2)...), bytes.Repeat([]byte{3}, 16)...)...)
	add("FuzzRouting", "next-hop", slot(nextHop))
	add("FuzzRouting", "next-hop-delay", slot(nextHop, cmd(0x04, delay...)))
	add("FuzzRouting", "deliver", slot(cmd(0x02, b32(4)...)))
	add("FuzzRouting", "deliver-surb-delay", slot(cmd(0x02, b32(4)...), cmd(0x03, bytes.Repeat([]byte{5}, 16)...), cmd(0x04, delay...)))
	add("FuzzRouting", "exact-fit", append(cmd(0x02, b32(4)...), cmd(0x04, delay...)...))
	add("FuzzRouting", "out-of-order", slot(cmd(0x04, delay...), cmd(0x02, b32(4)...)))
	add("FuzzRouting", "unknown", slot(cmd(0x07)))
	add("FuzzRouting", "empty", nil)

	// FuzzGeometry.
	gb, err := g.MarshalBinary()
	if err != nil {
		return err
	}
	add("FuzzGeometry", "default", gb)
	add("FuzzGeometry", "one-hop-minimal", []byte{1, 1, 0, 86, 0, 0, 0, 49})
	add("FuzzGeometry", "version-2", []byte{2, 5, 0, 96, 0, 0, 8, 0})
	add("FuzzGeometry", "short", gb[:4])

	// FuzzSURB and FuzzSURBKeys.
	surb3, keys3, err := mixnet.NewSURB(rng, g, fuzzPath, mixnet.RecipientID{'s'})
	if err != nil {
		return err
	}
	sb, _ := surb3.MarshalBinary()
	kb, _ := keys3.MarshalBinary()
	add("FuzzSURB", "valid", sb)
	add("FuzzSURB", "truncated", sb[:len(sb)-1])
	add("FuzzSURBKeys", "valid-3-hops", kb)
	add("FuzzSURBKeys", "truncated", kb[:20])

	// FuzzReplayJournal: a journal as a relay writes it (epoch 1, key ID
	// "fuzz"), and a torn one.
	dir, err := os.MkdirTemp("", "testdatagen")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	jpath := filepath.Join(dir, "journal")
	rcache, err := mixnet.OpenReplayCache(jpath, 1, [32]byte{'f', 'u', 'z', 'z'}, 64)
	if err != nil {
		return err
	}
	for i := range 3 {
		sum := sha256.Sum256([]byte{byte(i)})
		if err := rcache.Add(mixnet.ReplayTag(sum[:16])); err != nil {
			return err
		}
	}
	if err := rcache.Close(); err != nil {
		return err
	}
	journal, err := os.ReadFile(jpath)
	if err != nil {
		return err
	}
	add("FuzzReplayJournal", "three-tags", journal)
	add("FuzzReplayJournal", "torn", journal[:len(journal)-5])
	add("FuzzReplayJournal", "header-only", journal[:48])

	for target, files := range seeds {
		if err := os.RemoveAll(filepath.Join(mixnetDir, "testdata", "fuzz", target)); err != nil {
			return err
		}
		for name, b := range files {
			if err := fuzzcheck.WriteSeed(mixnetDir, target, name, b); err != nil {
				return err
			}
		}
	}

	// lioness FuzzRoundTrip: (keys, block).
	lionessDir := filepath.Join(root, "internal", "crypto", "lioness")
	if err := os.RemoveAll(filepath.Join(lionessDir, "testdata", "fuzz", "FuzzRoundTrip")); err != nil {
		return err
	}
	keyBytes := make([]byte, 128)
	block := make([]byte, 2048)
	lr := newRecorder("sealnet lioness seeds")
	io.ReadFull(lr, keyBytes)
	io.ReadFull(lr, block)
	for name, b := range map[string][]byte{"payload-size": block, "minimal": block[:33], "too-short": block[:32]} {
		if err := fuzzcheck.WriteSeed(lionessDir, "FuzzRoundTrip", name, keyBytes, b); err != nil {
			return err
		}
	}
	return nil
}
