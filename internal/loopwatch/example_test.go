package loopwatch_test

import (
	"fmt"
	"time"

	"github.com/sealnet/sealnet/internal/loopwatch"
	"github.com/sealnet/sealnet/mixnet"
)

// A client watching its cover replies: each cover packet's SURB ID is a
// loop's ID, and the reply fetched from the mailbox is its return. Here
// the last 30 of 100 cover packets are dropped on the way.
func Example_client() {
	// Out through 3 mixes and back through the SURB's 3, 50 ms each on
	// average; the wait for the next fetch and the links allowed 2 s.
	slow := loopwatch.ExpectedRTT(6, 50*time.Millisecond, 2*time.Second, 1-loopwatch.DefaultSlowShare)
	w, err := loopwatch.New(loopwatch.Config{Timeout: 15 * time.Second, SlowRTT: slow})
	if err != nil {
		panic(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 100 {
		var id mixnet.SURBID // the cover packet's SURB
		id[0], id[1] = byte(i), 1
		sent := t0.Add(time.Duration(i) * 500 * time.Millisecond)
		w.Sent(id, sent)
		if i < 70 {
			w.Returned(id, sent.Add(time.Second)) // its reply, fetched
		}
	}
	st := w.Check(t0.Add(time.Minute + 10*time.Second)) // every deadline has passed
	fmt.Printf("expect replies within %.2fs\n", slow.Seconds())
	fmt.Println(st.Alarm, st.Started)
	fmt.Println(st.Text())
	// Output:
	// expect replies within 2.53s
	// loss loss
	// 30 of your last 100 cover packets did not come back (expected about 1): someone may be blocking or delaying your connection
}
