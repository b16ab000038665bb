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
