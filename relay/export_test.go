package relay

import (
	"errors"
	"sync/atomic"
)

// FailReplaySync makes n's replay-journal syncs fail while fail is set, as
// a full or failing disk would.
func FailReplaySync(n *Node, fail *atomic.Bool) {
	d := n.gate
	d.mu.Lock()
	defer d.mu.Unlock()
	inner := d.sync
	d.sync = func() error {
		if fail.Load() {
			return errors.New("injected disk fault")
		}
		return inner()
	}
}
