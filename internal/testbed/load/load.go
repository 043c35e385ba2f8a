// Package load drives a workload on a running testnet (`sealnet testnet
// load`, docs/measure.md): K real clients, with their own keys, links and
// cover traffic, write to each other by the simulator's workload model for
// a set time, and the driver alone records the ground truth — who sent
// which message to whom, and when — in the testnet's folder. The relays
// and providers record nothing of the kind; the driver knows it because it
// is every sender and every recipient.
package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealnet/sealnet/internal/atomicfile"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/sender"
	"github.com/sealnet/sealnet/sim"
)

// TruthFile is where Run writes the ground truth, relative to the
// testnet's folder.
const TruthFile = "load/truth.json"

// Options say what to run.
type Options struct {
	// Scenario gives the workload (users, workload.*, client.*,
	// mixing.mean_delay, duration, warmup, seed). Its network shape is
	// replaced by the testnet's.
	Scenario *sim.Config
	// Drain is how long to keep the clients running after the last message
	// is written, for it to arrive; default 60s.
	Drain  time.Duration
	Logger *slog.Logger
	// Progress, if set, hears what the driver is doing.
	Progress func(string)
}

// Truth is the ground truth of a run.
type Truth struct {
	Testnet  string      `json:"testnet"`
	Started  time.Time   `json:"started"`  // the workload's time origin
	Warmup   float64     `json:"warmup_s"` // seconds from Started
	Duration float64     `json:"duration_s"`
	Ended    time.Time   `json:"ended"` // clients stopped
	Scenario *sim.Config `json:"scenario"`
	Users    []User      `json:"users"`
	Messages []Message   `json:"messages"`
	// Introductions: messages each user's contacts got from it before
	// Started (not part of the workload).
	Introductions int `json:"introductions"`
}

// User is one client of the workload.
type User struct {
	Address  string  `json:"address"`
	Host     string  `json:"host"` // the loopback address its links come from
	Provider string  `json:"provider"`
	Contacts []int32 `json:"contacts"`
}

// Message is one real message. Times are zero when it did not happen.
type Message struct {
	ID        string    `json:"id"`
	From      int32     `json:"from"`
	To        int32     `json:"to"`
	Queued    time.Time `json:"queued"`
	Received  time.Time `json:"received,omitzero"`  // shown to the recipient
	Delivered time.Time `json:"delivered,omitzero"` // acknowledged to the sender
	Failed    string    `json:"failed,omitempty"`
}

// UserHost is the loopback address user u's links come from: the
// observer's "who is at this address".
func UserHost(u int) string {
	return "127.0.1." + strconv.Itoa(u+1)
}

// ReadTruth reads a ground-truth file.
func ReadTruth(path string) (*Truth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	t, err := ParseTruth(b)
	if err != nil {
		return nil, fmt.Errorf("load: %s: %w", path, err)
	}
	return t, nil
}

// ErrTruth is wrapped by ParseTruth's errors.
var ErrTruth = errors.New("not a ground-truth file of sealnet testnet load")

// ParseTruth decodes and checks a ground-truth file: every user and
// message must be consistent with the scenario, so that the analysis can
// index by them.
func ParseTruth(b []byte) (*Truth, error) {
	var t Truth
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTruth, err)
	}
	if t.Scenario == nil || len(t.Users) == 0 {
		return nil, fmt.Errorf("%w: no scenario or no users", ErrTruth)
	}
	if err := t.Scenario.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTruth, err)
	}
	n := int32(len(t.Users))
	if int(n) != t.Scenario.Users || n > 250 {
		return nil, fmt.Errorf("%w: %d users for a scenario of %d", ErrTruth, n, t.Scenario.Users)
	}
	if t.Warmup < 0 || t.Duration <= t.Warmup || math.IsNaN(t.Warmup) || math.IsNaN(t.Duration) || t.Ended.Before(t.Started) {
		return nil, fmt.Errorf("%w: bad times", ErrTruth)
	}
	for u, us := range t.Users {
		if len(us.Contacts) == 0 {
			return nil, fmt.Errorf("%w: user %d has no contacts", ErrTruth, u)
		}
		for _, c := range us.Contacts {
			if c < 0 || c >= n || int(c) == u {
				return nil, fmt.Errorf("%w: user %d: contact %d", ErrTruth, u, c)
			}
		}
	}
	for i, m := range t.Messages {
		if m.From < 0 || m.From >= n || m.To < 0 || m.To >= n {
			return nil, fmt.Errorf("%w: message %d names an unknown user", ErrTruth, i)
		}
	}
	return &t, nil
}

// passphrase of the synthetic users' vaults: they hold nothing to protect.
var passphrase = []byte("sealnet load: synthetic users")

// Shape sets cfg's network shape to the testnet's and checks it.
func Shape(cfg *sim.Config, nw *testnet.Network) error {
	cfg.Providers, cfg.Layers, cfg.Width = nw.Spec.Providers, nw.Spec.Layers, nw.Spec.Width
	// The default top-k list was made for the file's number of users.
	cfg.Adv.TopK = slices.DeleteFunc(cfg.Adv.TopK, func(k int) bool { return k > cfg.Users })
	if err := cfg.Check(); err != nil {
		return err
	}
	if cfg.Users > 250 {
		return errors.New("load: at most 250 users (one loopback address each)")
	}
	if cfg.Tor.Fraction > 0 || cfg.Workload.ReplyProb > 0 || cfg.Workload.OfflineMean > 0 || cfg.Workload.OneShot > 0 {
		return errors.New("load: the driver runs neither a Tor population, replies, offline periods nor one-shot senders; remove them from the scenario")
	}
	if cfg.Adv.WithholdAcks || cfg.Workload.Fragments > 1 || cfg.Client.Cover != "returns" {
		return errors.New("load: the providers acknowledge everything, the clients' cover returns and the driver writes one-fragment messages; remove adversary.withhold_acks, client.cover and workload.fragments from the scenario")
	}
	return nil
}

// Run drives the workload on the running network nw and writes the ground
// truth to TruthFile. It returns the truth also on a partial run, with the
// error.
func Run(ctx context.Context, nw *testnet.Network, o Options) (*Truth, error) {
	cfg := o.Scenario
	if err := Shape(cfg, nw); err != nil {
		return nil, err
	}
	// The clients follow the network's parameters, whatever the scenario
	// says: refuse a scenario that says otherwise.
	params, err := nw.Parameters()
	if err != nil {
		return nil, err
	}
	if err := Parameters(cfg, params); err != nil {
		return nil, err
	}
	if !nw.Spec.HostPerNode {
		return nil, errors.New("load: the testnet's nodes share one address, so a capture cannot tell them apart; create it with `sealnet testnet up --host-per-node`")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	say := func(f string, a ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(f, a...))
		}
	}
	drain := o.Drain
	if drain == 0 {
		drain = time.Minute
	}
	contacts, err := sim.Contacts(cfg)
	if err != nil {
		return nil, err
	}
	home := nw.Path("load")
	if err := os.RemoveAll(filepath.Join(home, "users")); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err = nw.WaitDocument(wctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("load: is the testnet running (sealnet testnet up --dir %s)? %w", nw.Dir, err)
	}
	var providers []string
	for _, n := range nw.Nodes {
		if n.Role == "provider" {
			providers = append(providers, n.Domain)
		}
	}
	tr := &Truth{Testnet: nw.Dir, Scenario: cfg, Warmup: cfg.Warmup.D().Seconds(), Duration: cfg.Duration.D().Seconds()}
	users := make([]*user, cfg.Users)
	say("creating and registering %d users", cfg.Users)
	for u := range users {
		d := providers[u%len(providers)] // the simulator's u mod P
		us := User{Address: "u" + strconv.Itoa(u) + "@" + d, Host: UserHost(u), Provider: d, Contacts: contacts[u]}
		tr.Users = append(tr.Users, us)
		c, err := newUser(ctx, nw, filepath.Join(home, "users", strconv.Itoa(u)), us, cfg, log)
		if err != nil {
			closeAll(users)
			return nil, err
		}
		users[u] = &user{c: c, idx: int32(u)}
	}
	intro := &recorder{byID: map[string]int{}}
	rec := &recorder{byID: map[string]int{}}
	var cur atomic.Pointer[recorder]
	cur.Store(intro)
	runCtx, stopClients := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, us := range users {
		wg.Add(2)
		go func() {
			defer wg.Done()
			us.c.Run(runCtx, nil)
		}()
		go func() {
			defer wg.Done()
			follow(runCtx, us, func(id string) *recorder {
				if intro.has(id) {
					return intro
				}
				return cur.Load()
			})
		}()
	}
	// Introductions: whoever u writes to first writes to u, so that u
	// holds its delivery token (docs/mailbox.md §4) and a session, as
	// contacts do. Without it every message would be a stranger's, held to
	// the mailbox's unsolicited rate limit.
	say("introducing contacts")
	if err := introduce(ctx, tr, users, intro); err != nil {
		stopClients()
		wg.Wait()
		closeAll(users)
		return nil, err
	}
	tr.Introductions = len(intro.msgs)
	cur.Store(rec)
	tr.Started = time.Now()
	say("writing messages for %v (warm-up %v)", cfg.Duration.D(), cfg.Warmup.D())
	werr := write(ctx, tr, users, rec, cfg)
	say("waiting up to %v for the last messages", drain)
	deadline := time.Now().Add(drain)
	for ctx.Err() == nil && time.Now().Before(deadline) && rec.pending() > 0 {
		sleep(ctx, 200*time.Millisecond)
	}
	stopClients()
	wg.Wait()
	tr.Ended = time.Now()
	closeAll(users)
	tr.Messages = rec.messages()
	if err := writeTruth(nw.Path(TruthFile), tr); err != nil {
		return tr, err
	}
	if werr == nil {
		werr = ctx.Err()
	}
	return tr, werr
}

type user struct {
	c   *sender.Client
	idx int32
}

func closeAll(us []*user) {
	for _, u := range us {
		if u != nil {
			u.c.Close()
		}
	}
}

// newUser creates, opens and registers one client whose links leave from
// its own loopback address.
func newUser(ctx context.Context, nw *testnet.Network, dir string, us User, cfg *sim.Config, log *slog.Logger) (*sender.Client, error) {
	var auths []sender.AuthorityState
	for _, a := range nw.Authorities {
		auths = append(auths, sender.AuthorityState{URL: a.URL, Key: a.Key})
	}
	s := sender.DefaultSettings()
	// The synthetic users' vaults need no costly key derivation.
	kdf := sender.KDFParams{Time: 1, Memory: 8 << 10, Threads: 1}
	if err := sender.Init(dir, passphrase, sender.InitOptions{Address: us.Address, Authorities: auths,
		Threshold: nw.Spec.Threshold, EpochPeriod: nw.Spec.EpochPeriod, Settings: &s, KDF: &kdf}); err != nil {
		return nil, err
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(us.Host)}}
	var plain net.Dialer
	c, err := sender.Open(dir, passphrase, sender.Options{Logger: log.With("user", us.Address),
		Dial: d.DialContext, ProviderDial: d.DialContext, DirectoryDial: plain.DialContext})
	if err != nil {
		return nil, err
	}
	// A network just started may not have every node on the document
	// yet: retry for a minute.
	deadline := time.Now().Add(time.Minute)
	for {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := c.Register(rctx)
		cancel()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			c.Close()
			return nil, fmt.Errorf("load: register %s: %w", us.Address, err)
		}
		log.Warn("registering; will retry", "user", us.Address, "err", err)
		sleep(ctx, 2*time.Second)
	}
}

// write queues messages: each user writes as a Poisson process of rate
// workload.message_rate to a contact picked uniformly, for the scenario's
// duration.
func write(ctx context.Context, tr *Truth, users []*user, rec *recorder, cfg *sim.Config) error {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x10ad))
	rate := cfg.Workload.MessageRate
	next := make([]time.Duration, len(users))
	for u := range next {
		next[u] = time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
	}
	end := cfg.Duration.D()
	for n := 0; ; n++ {
		u := 0
		for k := range next {
			if next[k] < next[u] {
				u = k
			}
		}
		at := next[u]
		if at >= end {
			return nil
		}
		sleep(ctx, time.Until(tr.Started.Add(at)))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cs := tr.Users[u].Contacts
		to := cs[rng.IntN(len(cs))]
		body := fmt.Sprintf("load message %d from u%d to u%d", n, u, to)
		now := time.Now()
		id, err := users[u].c.Queue(tr.Users[to].Address, []byte(body), sender.RouteMix)
		if err != nil {
			return fmt.Errorf("load: queue: %w", err)
		}
		rec.queued(Message{ID: id, From: int32(u), To: to, Queued: now})
		next[u] += time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
	}
}

// introduce has every user write once to each user that writes to it, and
// waits (at most two minutes) until all of those are shown.
func introduce(ctx context.Context, tr *Truth, users []*user, rec *recorder) error {
	done := map[[2]int32]bool{}
	for u, us := range tr.Users {
		for _, c := range us.Contacts {
			k := [2]int32{c, int32(u)}
			if done[k] {
				continue
			}
			done[k] = true
			id, err := users[c].c.Queue(tr.Users[u].Address, []byte("hello from a contact"), sender.RouteMix)
			if err != nil {
				return fmt.Errorf("load: introduce: %w", err)
			}
			rec.queued(Message{ID: id, From: c, To: int32(u), Queued: time.Now()})
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for rec.pending() > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("load: %d of %d introductions not delivered in 2 minutes; is every node of the testnet up?", rec.pending(), len(done))
		}
		sleep(ctx, 200*time.Millisecond)
	}
	return nil
}

// recorder keeps the messages and what happened to them.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
	byID map[string]int
	// early holds, per message ID, events that came before Queue returned.
	early  map[string][]func(*Message)
	nEarly int
}

func (r *recorder) queued(m Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID[m.ID] = len(r.msgs)
	r.msgs = append(r.msgs, m)
	for _, f := range r.early[m.ID] {
		f(&r.msgs[len(r.msgs)-1])
	}
	delete(r.early, m.ID)
}

// apply runs f on message id now, or once it is queued.
func (r *recorder) apply(id string, f func(*Message)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.byID[id]; ok {
		f(&r.msgs[i])
		return
	}
	if r.nEarly < 10000 { // bounded: an ID that is never queued is not ours
		if r.early == nil {
			r.early = map[string][]func(*Message){}
		}
		r.early[id] = append(r.early[id], f)
		r.nEarly++
	}
}

// follow records u's events in the recorder that holds each message.
func follow(ctx context.Context, u *user, which func(id string) *recorder) {
	evs := u.c.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-evs:
			now := time.Now()
			switch e.Kind {
			case sender.EventReceived:
				if e.Message != nil {
					which(e.Message.ID).apply(e.Message.ID, func(m *Message) {
						if m.Received.IsZero() && m.To == u.idx {
							m.Received = now
						}
					})
				}
			case sender.EventDelivered:
				which(e.ID).apply(e.ID, func(m *Message) {
					if m.Delivered.IsZero() {
						m.Delivered = now
					}
				})
			case sender.EventFailed:
				which(e.ID).apply(e.ID, func(m *Message) { m.Failed = e.Text })
			}
		}
	}
}

func (r *recorder) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.byID[id]
	return ok
}

func (r *recorder) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m.Received.IsZero() && m.Failed == "" {
			n++
		}
	}
	return n
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

func writeTruth(path string, t *Truth) error {
	b, err := json.MarshalIndent(t, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'))
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
