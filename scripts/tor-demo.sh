#!/bin/sh
# make tor-demo: the Tor path by hand. A testnet beside a private Tor
# network on loopback (no public Tor relay is contacted); providers publish
# onion services. alice@a sends to bob@b over Tor straight to Bob's
# provider's onion service, then through the mix network entering over
# Tor; Bob fetches over Tor. Needs tor (apt-get install tor).
set -eu
BIN=${BIN:-bin/sealnet}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealnet-tor-demo.XXXXXX")
NET_PID=
. "$(dirname "$0")/lib.sh"
cleanup() {
	if [ -f "$WORK/alice/daemon.pid" ]; then
		"$BIN" daemon --stop --dir "$WORK/alice" >/dev/null 2>&1 || true
	fi
	stop_net
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "== starting a testnet with a private Tor network in $WORK/net (about 30 s)"
"$BIN" testnet up --dir "$WORK/net" --tor >"$WORK/testnet.log" 2>&1 &
NET_PID=$!
wait_running "$WORK/testnet.log" 600
grep -E "Tor network bootstrapped|--tor attach|onion service" "$WORK/testnet.log" | sed 's/^/   /'
TOR=$(cat "$WORK/net/tor-network/attach-flags")

SEALNET_PASSPHRASE=demo-passphrase-not-for-real-use
export SEALNET_PASSPHRASE
"$BIN" init --dir "$WORK/alice" --address alice@a --testnet "$WORK/net" >/dev/null
"$BIN" init --dir "$WORK/bob" --address bob@b --testnet "$WORK/net" >/dev/null
register() {
	j=0
	# shellcheck disable=SC2086
	until "$BIN" register --dir "$1" $TOR --timeout 30s >/dev/null 2>"$WORK/register.err"; do
		j=$((j + 1))
		if [ $j -gt 10 ]; then
			cat "$WORK/register.err" >&2
			exit 1
		fi
		sleep 2
	done
}
echo "== registering alice@a and bob@b over Tor (at their providers' onion services)"
register "$WORK/alice"
register "$WORK/bob"

echo "== alice@a -> bob@b over Tor, straight to Bob's provider's onion service (--route onion)"
echo "   (send starts a background daemon for Alice, over the same tor; --wait follows the outcome)"
# shellcheck disable=SC2086
"$BIN" send --dir "$WORK/alice" $TOR --route onion --to bob@b --wait 2m "Hello Bob, over an onion service."
echo "== alice@a -> bob@b through the mix network, entering over Tor (--route mix)"
# shellcheck disable=SC2086
"$BIN" send --dir "$WORK/alice" $TOR --to bob@b --wait 2m "Hello again, through the mixes."
echo "== bob@b fetches over Tor"
# shellcheck disable=SC2086
"$BIN" fetch --dir "$WORK/bob" $TOR --wait 20s
echo "== done; stopping Alice's daemon, the testnet and the Tor network"
