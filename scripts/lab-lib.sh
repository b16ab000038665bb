# lab-lib.sh: shell functions the lab scripts share; source it after setting `lab` (scripts/lab.sh or another
# tool with its commands) and `bin` (the folder of the swlaunch programs).

# wait_for_hosts HOST N: waits up to 20 s until the scheduler, asked through HOST's daemon, lists N hosts; then
# prints the cluster as `swlaunch status` shows it.
wait_for_hosts() {
  local host=$1 wanted=$2 n
  for _ in $(seq 100); do
    n=$("$lab" run "$host" -- "$bin/swlaunch" status --json 2>/dev/null \
      | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hosts"]))' 2>/dev/null || echo 0)
    [[ $n -ge $wanted ]] && break
    sleep 0.2
  done
  "$lab" run "$host" -- "$bin/swlaunch" status
}

# start_cluster HIDDEN...: the three-host lab cluster of the build scripts, on hosts client, h1 and h2 (already up):
# a cluster key in $work, the scheduler on h1, helpers h1 and h2 (2 slots, each HIDDEN folder covered so that they
# cannot read the client's files), and the client capped at $client_cpu cores with --no-remote; waits for all three.
start_cluster() {
  local hide=() h
  for h in "$@"; do hide+=(--hide "$h"); done
  key=$work/cluster.key
  "$bin/swlaunch" key generate "$key" >/dev/null
  h1=$("$lab" ip h1)
  "$lab" run h1 -- "$bin/swlaunch-scheduler" --listen 0.0.0.0:8775 --key-file "$key" >"$work/scheduler.log" 2>&1 &
  for h in h1 h2; do
    "$lab" run $h "${hide[@]}" -- "$bin/swlaunchd" --name $h --listen 0.0.0.0:8776 --scheduler "$h1:8775" \
      --state-dir "$work/state-$h" --max-jobs 2 --key-file "$key" >"$work/$h.log" 2>&1 &
  done
  "$lab" run client --cpu "$client_cpu" -- "$bin/swlaunchd" --name client --no-remote --local-jobs 1 --scheduler "$h1:8775" \
    --state-dir "$work/state-client" --key-file "$key" >"$work/client.log" 2>&1 &
  wait_for_hosts client 3
}
