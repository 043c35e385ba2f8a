# Shared by the scripts that run a testnet in the background (demo.sh,
# tor-demo.sh, measure.sh); source it after setting NET_PID= .

# stop_net stops the background `sealnet testnet up` (SIGINT: nodes stop,
# a capture flushes) and waits for it.
stop_net() {
	if [ -n "$NET_PID" ]; then
		kill -INT "$NET_PID" 2>/dev/null || true
		wait "$NET_PID" 2>/dev/null || true
		NET_PID=
	fi
}

# wait_running LOG TRIES: wait, half a second a try, until the testnet
# writing LOG says it runs; print LOG and fail if it exits or takes longer.
wait_running() {
	i=0
	until grep -q "testnet: running" "$1"; do
		i=$((i + 1))
		if [ "$i" -gt "$2" ] || ! kill -0 "$NET_PID" 2>/dev/null; then
			echo "the testnet did not come up; its output:" >&2
			cat "$1" >&2
			exit 1
		fi
		sleep 0.5
	done
}
