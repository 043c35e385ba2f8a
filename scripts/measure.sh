#!/bin/sh
# make measure: measure the real network against the simulator
# (docs/measure.md). Two runs, each on a fresh testnet with a loopback
# address per node, captured with tcpdump from before its nodes start:
#   mixed   - sim/scenarios/measure.toml on the directory's default parameters;
#   control - sim/scenarios/measure-control.toml on a testnet whose
#             parameters turn every defence off: flow matching must work.
# Each is analysed with `sealnet sim analyze`; the reports land in
# $OUT/mixed and $OUT/control, and $OUT/report.md links them.
# Needs tcpdump and root or CAP_NET_RAW; about 4 minutes.
set -eu
BIN=${BIN:-bin/sealnet}
OUT=${OUT:-measure-out}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealnet-measure.XXXXXX")
NET_PID=
. "$(dirname "$0")/lib.sh"
cleanup() {
	stop_net
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$OUT"

# measure NAME SCENARIO [testnet up flags...]
measure() {
	name=$1
	scenario=$2
	shift 2
	net="$WORK/$name"
	echo "== $name: a testnet with a host per node, captured from the start"
	"$BIN" testnet up --dir "$net" --host-per-node --layers 3 --width 2 --providers 2 \
		--capture "$WORK/$name.pcap" "$@" >"$WORK/$name-testnet.log" 2>&1 &
	NET_PID=$!
	wait_running "$WORK/$name-testnet.log" 240
	echo "== $name: workload from $scenario"
	"$BIN" testnet load --dir "$net" --config "$scenario" --drain 30s
	stop_net
	grep "capture:" "$WORK/$name-testnet.log" | sed 's/^/   /'
	echo "== $name: analysis"
	"$BIN" sim analyze --capture "$WORK/$name.pcap" --testnet "$net" --out "$OUT/$name" --title "sealnet measured: $name run"
	cp "$WORK/$name.pcap" "$net/load/truth.json" "$OUT/$name/"
	# The manifest and node configurations (no keys, logs or users), so
	# that the run can be analysed again:
	#   sealnet sim analyze --capture OUT/NAME/NAME.pcap --testnet OUT/NAME/testnet --out DIR
	mkdir -p "$OUT/$name/testnet"
	tar -C "$net" --exclude=./*/data --exclude=./logs --exclude=./load/users --exclude=./directory -cf - . | tar -C "$OUT/$name/testnet" -xf -
}

measure control sim/scenarios/measure-control.toml --parameters scripts/measure-control-parameters.toml
measure mixed sim/scenarios/measure.toml

{
	echo "# sealnet: the simulator's predictions measured on a real testnet"
	echo
	echo "Made by \`make measure\` on $(date -u '+%Y-%m-%d %H:%M UTC'); docs/measure.md explains the method."
	echo
	echo "- [mixed run](mixed/report.md): cover and mixing on (sim/scenarios/measure.toml)"
	echo "- [control run](control/report.md): mixing and cover off (sim/scenarios/measure-control.toml)"
	echo
	echo "Each folder also holds the capture (\`*.pcap\`), the ground truth (\`truth.json\`), the figures as JSON, and the testnet's manifest and node configurations (\`testnet/\`): \`sealnet sim analyze --capture mixed/mixed.pcap --testnet mixed/testnet --out DIR\` analyses a run again."
} >"$OUT/report.md"
echo "report: $OUT/report.md"
