package link

import "sync/atomic"

// Stats counts link events. Share one among the links of a node and export
// it as metrics; a link given none counts into a private one.
type Stats struct {
	FramesIn         atomic.Uint64 // packet frames received
	FramesOut        atomic.Uint64 // packet frames sent
	PaddingIn        atomic.Uint64 // padding frames received
	PaddingOut       atomic.Uint64 // padding frames sent
	HandshakesOK     atomic.Uint64
	HandshakesFailed atomic.Uint64 // failed or refused handshakes, either side
	ConnsRefused     atomic.Uint64 // connections refused by a cap before the handshake
	Dropped          atomic.Uint64 // packets dropped: queue full, or queued when a link shut down
	Sessions         atomic.Uint64 // sessions ended at MaxFrames and renewed
}

func (s *Stats) frameIn(typ byte) {
	if typ == framePacket {
		s.FramesIn.Add(1)
	} else {
		s.PaddingIn.Add(1)
	}
}

func (s *Stats) frameOut(typ byte) {
	if typ == framePacket {
		s.FramesOut.Add(1)
	} else {
		s.PaddingOut.Add(1)
	}
}
