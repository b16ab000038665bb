# loopback-cluster.sh: a scheduler, two helper daemons and a client daemon on 127.0.0.1, for the demos. Source it
# after setting `bin` (the swlaunch programs) and `work` (a scratch folder); it sets `pids` (stopped at exit),
# `sched` (the scheduler's port) and SWLAUNCH_SOCKET (the client daemon's socket), and waits until both helpers
# are registered. SCHEDULER_ARGS and HELPER_ARGS (arrays) add options.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sched=$(port)
"$bin/swlaunch-scheduler" --listen "127.0.0.1:$sched" "${SCHEDULER_ARGS[@]}" 2>"$work/scheduler.log" & pids+=($!)
for h in helper1 helper2; do
  "$bin/swlaunchd" --name $h --listen "127.0.0.1:$(port)" --scheduler "127.0.0.1:$sched" "${HELPER_ARGS[@]}" \
    --socket "$work/$h.sock" --state-dir "$work/state-$h" 2>"$work/$h.log" & pids+=($!)
done
export SWLAUNCH_SOCKET=$work/client.sock
"$bin/swlaunchd" --name client --no-remote --scheduler "127.0.0.1:$sched" --socket "$SWLAUNCH_SOCKET" \
  --state-dir "$work/state-client" 2>"$work/client.log" & pids+=($!)
for _ in $(seq 100); do
  "$bin/swlaunch-ctl" status --json 2>/dev/null | grep -q helper2 && break
  sleep 0.1
done
