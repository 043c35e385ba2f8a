package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/internal/daemon"
	"github.com/sealnet/sealnet/internal/testbed/capture"
	"github.com/sealnet/sealnet/internal/testbed/testnet"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/mixnet/directory/authority"
)

const testnetUsage = "Usage: sealnet testnet up --dir DIR [flags]\n       sealnet testnet load --dir DIR [--config scenario.toml] [--capture FILE]\n\nup starts a whole network on loopback (see README.md); load drives a workload\nof real clients on a running one and records its ground truth (docs/measure.md)."

func runTestnet(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "load" {
		return runTestnetLoad(args[1:], stdout, stderr)
	}
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stdout, testnetUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "up" {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "sealnet testnet: unknown subcommand %q\n\n", args[0])
		}
		fmt.Fprintln(stderr, testnetUsage)
		return errUsage
	}
	fs := newFlagSet("testnet up", "testnet up --dir DIR [flags]", stderr)
	dir := fs.String("dir", "", "folder for every config, key, log and the directory document (created if missing, reused if present)")
	layers := fs.Int("layers", 3, "mix layers (new networks only)")
	width := fs.Int("width", 2, "mixes per layer (new networks only)")
	providers := fs.Int("providers", 2, "providers (new networks only)")
	auths := fs.Int("authorities", 1, "directory authorities (new networks only)")
	threshold := fs.Int("threshold", 0, "authority signatures a document needs; default a majority (new networks only)")
	epoch := fs.Duration("epoch", 0, "epoch length, default 20m (new networks only)")
	metricsOn := fs.Bool("metrics", true, "give every node a Prometheus metrics address (new networks only)")
	perNode := fs.Bool("host-per-node", false, "give every node its own loopback address 127.0.0.10, .11, ..., so a packet capture tells them apart (Linux; new networks only)")
	relayCover := fs.Bool("relay-cover", true, "relays send loop cover; false publishes relay_loop_rate = 0 (new networks only)")
	paramsFile := fs.String("parameters", "", "TOML file with a [parameters] section as in dirauth.toml: the network parameters the authorities publish; keys left out keep their defaults (new networks only; docs/directory.md)")
	meanDelay := fs.Duration("mean-delay", 0, "the network's mean per-hop delay (parameter mean_delay), for relay cover and, as they follow the directory, clients; default 200ms or --parameters' (new networks only)")
	clientRate := fs.Float64("client-rate", 0, "the network's client packets per second (parameter client_rate); default 2 or --parameters' (new networks only)")
	capturePath := fs.String("capture", "", "capture the network's loopback TCP traffic, from before the nodes start until they stop, into this pcap file (needs tcpdump, and root or CAP_NET_RAW; docs/measure.md)")
	torOn := fs.Bool("tor", false, "also run a private Tor network on loopback; providers publish onion services on it (new networks only; needs tor: apt-get install tor)")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "sealnet testnet up: --dir is required")
		fs.Usage()
		return errUsage
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var nw *testnet.Network
	if testnet.Exists(*dir) {
		if nw, err = testnet.Open(*dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "testnet: using the network in %s\n", *dir)
	} else {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		var mean *time.Duration
		var rate *float64
		if set["mean-delay"] {
			mean = meanDelay
		}
		if set["client-rate"] {
			rate = clientRate
		}
		params, err := testnetParameters(*paramsFile, mean, rate)
		if err != nil {
			return err
		}
		nw, err = testnet.Create(*dir, testnet.Spec{
			Layers: *layers, Width: *width, Providers: *providers,
			Authorities: *auths, Threshold: *threshold, EpochPeriod: *epoch, Metrics: *metricsOn, Tor: *torOn,
			HostPerNode: *perNode, NoCover: !*relayCover, Parameters: params,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "testnet: created a network in %s\n", nw.Dir)
	}
	ctx, stop := daemon.SignalContext(context.Background())
	defer stop()
	var capt *capture.Capturer
	if *capturePath != "" {
		// Before the nodes start: a link whose handshake the capture
		// missed cannot be read (docs/measure.md).
		if capt, err = capture.Start(ctx, capture.Options{Filter: "tcp and net 127.0.0.0/8", Path: *capturePath}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "testnet: capturing loopback TCP traffic into %s\n", *capturePath)
	}
	err = testnet.Up(ctx, nw, exe, stdout)
	if capt != nil {
		st, cerr := capt.Stop()
		fmt.Fprintf(stdout, "testnet: capture: %d packets written, %d dropped by the kernel\n", st.Captured, st.Dropped)
		if cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// testnetParameters are the parameters a new testnet's authorities
// publish: the [parameters] section of the file at path (if any), keys it
// leaves out at their defaults, then the flags given (nil: not given).
func testnetParameters(path string, meanDelay *time.Duration, clientRate *float64) (directory.Parameters, error) {
	var file struct {
		Parameters authority.ParametersConfig `toml:"parameters"`
	}
	if path != "" {
		if err := config.Load(path, &file); err != nil {
			return directory.Parameters{}, fmt.Errorf("--parameters: %w", err)
		}
	}
	p := file.Parameters.Parameters()
	if meanDelay != nil {
		p.MeanDelay = *meanDelay
	}
	if clientRate != nil {
		p.ClientRate = *clientRate
	}
	return p, nil
}
