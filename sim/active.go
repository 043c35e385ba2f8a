package sim

import "slices"

// The active attack on one client (docs/sim.md §3.10): the adversary
// controls the target's entry link (its network, its entry mix) and, in
// every other round, drops its packets (Adv.Block "drop") or holds them
// for Adv.BlockDelay ("delay"); it watches which mailboxes receive less in
// those rounds. Each target is blocked in its own pseudo-random half of
// the rounds, so that blocking one target does not look like blocking
// another. Nothing in the client notices (its loops stop coming back,
// but no alarm is raised), and a dropped real message is only sent again
// after its acknowledgement timeout. Per target, every mailbox r scores
// Σ deliveries in open rounds − Σ in blocked rounds; the target's contacts
// are exposed when they are exactly the top-ranked mailboxes (the
// target's own mailbox excluded). The recipients' providers count the
// deliveries, with loops stripped (returns.go).

type blockState struct {
	m       *model
	targets []*blockTarget
	byUser  map[int32]*blockTarget
	rounds  int // rounds closed since the warm-up
	hits    [][]bool
}

type blockTarget struct {
	user     int32
	contacts []int32
	score    []float64 // per mailbox: open − blocked deliveries
}

func (b *blockState) init(m *model, targets []int32) {
	b.m = m
	if m.cfg.Adv.Block == "none" {
		return
	}
	b.byUser = map[int32]*blockTarget{}
	for _, u := range targets {
		t := &blockTarget{user: u, contacts: m.contacts[u], score: make([]float64, m.cfg.Users)}
		b.targets = append(b.targets, t)
		b.byUser[u] = t
	}
	b.hits = make([][]bool, len(b.targets))
}

// blocked reports whether a packet u puts on its entry link at t is
// dropped or held, and until when (for "delay").
func (b *blockState) blocked(u int32, t int64) (drop bool, until int64) {
	if b.byUser == nil || b.byUser[u] == nil || t < b.m.warmup {
		return false, 0
	}
	if !b.isBlocked(u, t) {
		return false, 0 // open
	}
	if b.m.cfg.Adv.Block == "drop" {
		return true, 0
	}
	return false, t + int64(b.m.cfg.Adv.BlockDelay.D())
}

// delivered: an envelope landed in mailbox r at t.
func (b *blockState) delivered(r int32, t int64) {
	if b.byUser == nil || t < b.m.warmup {
		return
	}
	for _, tg := range b.targets {
		if b.isBlocked(tg.user, t) {
			tg.score[r]--
		} else {
			tg.score[r]++
		}
	}
}

// isBlocked: u's packets are blocked in the round that holds t, a
// pseudo-random half of the rounds after the warm-up (splitmix64 of the
// seed, the user and the round).
func (b *blockState) isBlocked(u int32, t int64) bool {
	if t < b.m.warmup {
		return false
	}
	x := b.m.cfg.Seed ^ uint64(uint32(u))<<32 ^ uint64((t-b.m.warmup)/int64(b.m.cfg.Adv.Round.D()))
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return (x^x>>31)&1 == 1
}

// closeRound checks every target at the disclosure checkpoints.
func (b *blockState) closeRound(rounds int, checkpoint bool) {
	b.rounds = rounds
	if !checkpoint {
		return
	}
	for i, tg := range b.targets {
		b.hits[i] = append(b.hits[i], tg.exposed())
	}
}

// exposed: the target's contacts outscore every other mailbox but its own.
func (tg *blockTarget) exposed() bool {
	worst := tg.score[tg.contacts[0]]
	for _, c := range tg.contacts {
		worst = min(worst, tg.score[c])
	}
	for r, s := range tg.score {
		if int32(r) != tg.user && s >= worst && !slices.Contains(tg.contacts, int32(r)) {
			return false
		}
	}
	return true
}

func (b *blockState) result(d *Disclosure) {
	if b.byUser == nil {
		return
	}
	d.Block = make([]float64, len(d.Checkpoints))
	d.BlockRounds = -1
	for i := range d.Checkpoints {
		s := 0.0
		for _, h := range b.hits {
			if i < len(h) && h[i] {
				s++
			}
		}
		d.Block[i] = s / float64(max(len(b.targets), 1))
		if d.BlockRounds < 0 && d.Block[i] >= 0.5 {
			d.BlockRounds = d.Checkpoints[i]
		}
	}
}
