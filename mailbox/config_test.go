package mailbox

import (
	"errors"
	"testing"
	"time"

	"github.com/sealnet/sealnet/internal/config"
	"github.com/sealnet/sealnet/mailbox/store"
)

// TestSettingsFillStoreLimits: the [mailbox] section's store keys take
// their defaults from store.Limits, and a limit out of range is reported
// under its config key, in the words the provider has always used.
func TestSettingsFillStoreLimits(t *testing.T) {
	var s Settings
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	want := store.DefaultLimits()
	want.MaxPhantoms = 0 // no config key: the store fills it in
	if got := s.Limits(); got != want {
		t.Fatalf("limits %+v, want the store's defaults %+v", got, want)
	}
	for _, c := range []struct {
		mod  func(*Settings)
		want string
	}{
		{func(s *Settings) { s.TTL = config.Duration(30 * time.Minute) }, "mailbox: invalid configuration: mailbox.ttl 30m0s is under an hour"},
		{func(s *Settings) { s.MaxBytes = 100 }, "mailbox: invalid configuration: mailbox.max_envelopes and max_bytes must hold at least one envelope"},
		{func(s *Settings) { s.MaxEnvelopes = -1 }, "mailbox: invalid configuration: mailbox.max_envelopes and max_bytes must hold at least one envelope"},
		{func(s *Settings) { s.BatchSize = 4097 }, "mailbox: invalid configuration: mailbox.batch_size 4097 is outside 1..4096"},
	} {
		var s Settings
		c.mod(&s)
		err := s.validate()
		if !errors.Is(err, ErrConfig) || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}
