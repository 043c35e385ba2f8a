package mixnet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"
)

type vectorFile struct {
	Geometry struct {
		Version         uint8  `json:"version"`
		MaxHops         int    `json:"max_hops"`
		RoutingInfoSize int    `json:"routing_info_size"`
		PayloadSize     int    `json:"payload_size"`
		PacketSize      int    `json:"packet_size"`
		Hash            string `json:"hash"`
	} `json:"geometry"`
	Vectors []struct {
		Name  string `json:"name"`
		Nodes []struct {
			ID         string `json:"id"`
			PrivateKey string `json:"private_key"`
			PublicKey  string `json:"public_key"`
		} `json:"nodes"`
		DelaysUS   []int64 `json:"delays_us"`
		Recipient  string  `json:"recipient"`
		Message    string  `json:"message"`
		Randomness string  `json:"randomness"`
		Packet     string  `json:"packet"`
		Hops       []struct {
			ReplayTag string `json:"replay_tag"`
			DelayUS   int64  `json:"delay_us"`
			NextHop   string `json:"next_hop"`
			Output    string `json:"output"`
			Recipient string `json:"recipient"`
			SURBID    string `json:"surb_id"`
			Payload   string `json:"payload"`
		} `json:"hops"`
		SURB     string `json:"surb"`
		SURBKeys string `json:"surb_keys"`
		Opened   string `json:"opened"`
	} `json:"vectors"`
}

// TestVectors rebuilds every packet in testdata/vectors.json from the
// recorded randomness and checks each hop's output, tag and result.
func TestVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatal(err)
	}
	g := Geometry{Version: vf.Geometry.Version, MaxHops: vf.Geometry.MaxHops,
		RoutingInfoSize: vf.Geometry.RoutingInfoSize, PayloadSize: vf.Geometry.PayloadSize}
	if g != DefaultGeometry() || g.Hash().String() != vf.Geometry.Hash || g.PacketSize() != vf.Geometry.PacketSize {
		t.Fatalf("vector geometry %+v does not match the default", vf.Geometry)
	}
	if len(vf.Vectors) < 4 {
		t.Fatalf("%d vectors", len(vf.Vectors))
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			var keys []*MixKey
			var path []Hop
			for i, n := range v.Nodes {
				k, err := NewMixKey(g, unhex(n.PrivateKey))
				if err != nil {
					t.Fatal(err)
				}
				pub := k.PublicKey()
				if hex.EncodeToString(pub[:]) != n.PublicKey {
					t.Fatalf("node %d: public key differs", i)
				}
				keys = append(keys, k)
				path = append(path, Hop{ID: NodeID(unhex(n.ID)), PublicKey: pub, Delay: time.Duration(v.DelaysUS[i]) * time.Microsecond})
			}
			rnd := bytes.NewReader(unhex(v.Randomness))
			recipient := RecipientID(unhex(v.Recipient))
			var pkt []byte
			var surbKeys *SURBKeys
			if v.SURB != "" {
				s, k, err := NewSURB(rnd, g, path, recipient)
				if err != nil {
					t.Fatal(err)
				}
				sb, _ := s.MarshalBinary()
				kb, _ := k.MarshalBinary()
				if !bytes.Equal(sb, unhex(v.SURB)) || !bytes.Equal(kb, unhex(v.SURBKeys)) {
					t.Fatal("SURB or SURB keys differ from the vector")
				}
				surbKeys = k
				if pkt, err = s.NewReply(g, unhex(v.Message)); err != nil {
					t.Fatal(err)
				}
			} else {
				var err error
				if pkt, err = NewPacket(rnd, g, path, recipient, unhex(v.Message)); err != nil {
					t.Fatal(err)
				}
			}
			if rnd.Len() != 0 {
				t.Fatalf("%d bytes of recorded randomness left unread", rnd.Len())
			}
			if !bytes.Equal(pkt, unhex(v.Packet)) {
				t.Fatal("packet differs from the vector")
			}
			for i, k := range keys {
				rc, _ := NewReplayCache(0, 4)
				res, err := k.Unwrap(pkt, rc)
				if err != nil {
					t.Fatalf("hop %d: %v", i, err)
				}
				h := v.Hops[i]
				if hex.EncodeToString(res.Tag[:]) != h.ReplayTag || res.Delay.Microseconds() != h.DelayUS {
					t.Fatalf("hop %d: tag or delay differs", i)
				}
				if h.Output != "" {
					if res.Final || hex.EncodeToString(res.NextHop[:]) != h.NextHop || !bytes.Equal(res.Packet, unhex(h.Output)) {
						t.Fatalf("hop %d: forward result differs", i)
					}
					pkt = res.Packet
					continue
				}
				if !res.Final || hex.EncodeToString(res.Recipient[:]) != h.Recipient || !bytes.Equal(res.Payload, unhex(h.Payload)) {
					t.Fatalf("hop %d: final result differs", i)
				}
				if surbKeys != nil {
					if hex.EncodeToString(res.SURBID[:]) != h.SURBID {
						t.Fatal("SURB ID differs")
					}
					opened, err := surbKeys.Open(res.Payload)
					if err != nil || !bytes.Equal(opened, unhex(v.Opened)) {
						t.Fatalf("opened reply differs: %v", err)
					}
				}
			}
		})
	}
}
