package load

import (
	"fmt"
	"strings"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mixnet/directory"
	"github.com/sealnet/sealnet/sim"
)

// Parameters makes cfg the simulation of a network that publishes p: the
// clients' stream, delays, retransmissions and fetching, the providers'
// hold and the relays' cover are the network's, never a scenario's (every
// client follows the directory). It returns an error naming every key the
// scenario set to something else, so that a workload is never measured
// against parameters it did not run with; apply it to a copy to learn
// what differs, or use its result after the error to take the network's.
func Parameters(cfg *sim.Config, p directory.Parameters) error {
	var diff []string
	set := func(key string, dst any, v any) {
		switch d := dst.(type) {
		case *float64:
			if *d != v.(float64) {
				diff = append(diff, fmt.Sprintf("%s %v (the network: %v)", key, *d, v))
				*d = v.(float64)
			}
		case *config.Duration:
			if *d != v.(config.Duration) {
				diff = append(diff, fmt.Sprintf("%s %v (the network: %v)", key, d.D(), v.(config.Duration).D()))
				*d = v.(config.Duration)
			}
		case *int:
			if *d != v.(int) {
				diff = append(diff, fmt.Sprintf("%s %v (the network: %v)", key, *d, v))
				*d = v.(int)
			}
		case *string:
			if *d != v.(string) {
				diff = append(diff, fmt.Sprintf("%s %q (the network: %q)", key, *d, v))
				*d = v.(string)
			}
		}
	}
	if cfg.Mixing.MeanDelay == nil {
		var d config.Duration
		cfg.Mixing.MeanDelay = &d
	}
	fetch := "constant"
	if p.FetchInterval == 0 {
		fetch = "longpoll"
	}
	set("mixing.mean_delay", cfg.Mixing.MeanDelay, config.Duration(p.MeanDelay))
	set("mixing.max_delay", &cfg.Mixing.MaxDelay, config.Duration(p.MaxDelay))
	set("client.rate", &cfg.Client.Rate, p.ClientRate)
	set("client.loop_rate", &cfg.Client.LoopRate, 0.0)
	set("client.ack_timeout", &cfg.Client.AckTimeout, config.Duration(p.AckTimeout))
	set("client.retry_jitter", &cfg.Client.RetryJitter, config.Duration(p.RetryJitter))
	set("client.max_attempts", &cfg.Client.MaxAttempts, p.MaxAttempts)
	set("client.fetch", &cfg.Client.Fetch, fetch)
	if p.FetchInterval > 0 {
		set("client.fetch_interval", &cfg.Client.FetchInterval, config.Duration(p.FetchInterval))
	}
	set("workload.ack_delay", &cfg.Workload.AckDelay, config.Duration(p.ProviderHold))
	set("relay.loop_rate", &cfg.Relay.LoopRate, p.RelayLoopRate)
	set("relay.mean_delay", &cfg.Relay.MeanDelay, config.Duration(p.MeanDelay))
	if len(diff) > 0 {
		return fmt.Errorf("load: the scenario differs from the parameters the network publishes: %s; remove those keys from the scenario, or start the testnet with them (sealnet testnet up --parameters FILE)", strings.Join(diff, ", "))
	}
	return nil
}
