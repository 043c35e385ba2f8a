#!/bin/sh
# make demo: a whole network on loopback, two users, one sealed message
# from alice@a to bob@b through three mix layers, its acknowledgement, and
# Bob reading it with a verified sender. `sealnet send` hands the message
# to a background daemon it starts for Alice, as it does for a user.
# Everything lives in a temporary folder and stops at the end, Alice's
# daemon included.
set -eu
BIN=${BIN:-bin/sealnet}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealnet-demo.XXXXXX")
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

echo "== starting a testnet on loopback (1 authority, 3 mix layers x 2, providers a and b) in $WORK/net"
"$BIN" testnet up --dir "$WORK/net" >"$WORK/testnet.log" 2>&1 &
NET_PID=$!
wait_running "$WORK/testnet.log" 120
echo "   network document signed and published"

# A demo passphrase; real users are asked on the terminal.
SEALNET_PASSPHRASE=demo-passphrase-not-for-real-use
export SEALNET_PASSPHRASE

echo "== creating alice@a and bob@b"
"$BIN" init --dir "$WORK/alice" --address alice@a --testnet "$WORK/net" >/dev/null
"$BIN" init --dir "$WORK/bob" --address bob@b --testnet "$WORK/net" >/dev/null

register() {
	j=0
	until "$BIN" register --dir "$1" --timeout 10s >/dev/null 2>"$WORK/register.err"; do
		j=$((j + 1))
		if [ $j -gt 20 ]; then
			cat "$WORK/register.err" >&2
			exit 1
		fi
		sleep 1 # nodes are still fetching the first document
	done
}
register "$WORK/alice"
register "$WORK/bob"
echo "   registered; prekeys uploaded"

echo "== alice@a sends to bob@b (sealed sender, padded, through 3 mix layers)"
"$BIN" send --dir "$WORK/alice" --to bob@b "Hello Bob, this is Alice. Nobody between us knows we talk."

echo "== waiting for the acknowledgement in Alice's history"
i=0
until "$BIN" history --dir "$WORK/alice" 2>/dev/null | grep -q '^To: bob@b \[delivered\]'; do
	i=$((i + 1))
	if [ $i -gt 240 ]; then
		echo "no acknowledgement after 2 minutes; Alice's daemon log:" >&2
		cat "$WORK/alice/daemon.log" >&2
		exit 1
	fi
	sleep 0.5
done
echo "   Delivered: bob@b's provider acknowledged it (sealnet history --dir $WORK/alice shows \"To: bob@b [delivered]\")"

echo "== bob@b fetches from his provider"
"$BIN" fetch --dir "$WORK/bob" --wait 20s

echo "== done; stopping Alice's daemon and the testnet"
