#!/usr/bin/env bash
# lab.sh: test hosts for multi-host runs, made of network namespaces on one private bridge
# (198.18.1.0/24, a benchmarking range; the bridge has no uplink, so no traffic leaves the machine).
# Each host has its own /run; `run` can cap a host's CPU (cgroup v2 or v1) and hide folders from it.
# Needs root, iproute2 and util-linux.
#
#   lab.sh up NAME...                                   create hosts (.10, .11, ...)
#   lab.sh down                                         remove every host this script made
#   lab.sh ip NAME                                      print a host's address
#   lab.sh run NAME [--cpu F] [--hide DIR]... -- CMD    run CMD on NAME, capped at F cores,
#                                                       with an empty folder over each DIR
#   lab.sh cpu NAME                                     CPU seconds used so far by what runs capped on NAME
#   lab.sh cpu-file NAME                                the file counting them (cgroup v2 cpu.stat, v1 cpuacct.usage)
set -euo pipefail
PREFIX=${LAB_PREFIX:-swlab}
SUBNET=${LAB_SUBNET:-198.18.1}
STATE=/run/lab-$PREFIX
FABRIC=$PREFIX-br
die() { echo "lab.sh: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "needs root"

cgroup_dir() { # the cgroup for a host, created with a CPU cap of $2 cores
  local name=$1 cores=$2 quota
  quota=$(awk -v f="$cores" 'BEGIN { printf "%d", f * 100000 }')
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    echo +cpu > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    mkdir -p "/sys/fs/cgroup/$PREFIX-$name"
    echo "$quota 100000" > "/sys/fs/cgroup/$PREFIX-$name/cpu.max"
    echo "/sys/fs/cgroup/$PREFIX-$name/cgroup.procs"
  elif [[ -d /sys/fs/cgroup/cpu ]]; then
    mkdir -p "/sys/fs/cgroup/cpu/$PREFIX-$name"
    echo 100000 > "/sys/fs/cgroup/cpu/$PREFIX-$name/cpu.cfs_period_us"
    echo "$quota" > "/sys/fs/cgroup/cpu/$PREFIX-$name/cpu.cfs_quota_us"
    # v1 accounts CPU time in cpuacct, which may be a hierarchy of its own.
    if [[ -d /sys/fs/cgroup/cpuacct && ! -e /sys/fs/cgroup/cpuacct/cpu.cfs_quota_us ]]; then
      mkdir -p "/sys/fs/cgroup/cpuacct/$PREFIX-$name"
      echo $$ > "/sys/fs/cgroup/cpuacct/$PREFIX-$name/tasks"
    fi
    echo "/sys/fs/cgroup/cpu/$PREFIX-$name/tasks"
  else
    die "no cpu cgroup controller"
  fi
}

up() {
  mkdir -p "$STATE"
  ip netns add "$FABRIC" 2>/dev/null || true
  ip -n "$FABRIC" link add br0 type bridge 2>/dev/null || true
  ip -n "$FABRIC" link set br0 up
  local n; n=$(find "$STATE" -name 'host-*' | wc -l)
  for name in "$@"; do
    [[ $name =~ ^[a-z0-9]{1,8}$ ]] || die "host names are 1-8 of a-z0-9: $name"
    [[ -e $STATE/host-$name ]] && continue
    local ns=$PREFIX-$name addr=$SUBNET.$((10 + n))
    ip netns add "$ns"
    ip link add "v$PREFIX$name" netns "$FABRIC" type veth peer name eth0 netns "$ns"
    ip -n "$FABRIC" link set "v$PREFIX$name" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" brd + dev eth0
    ip -n "$ns" link set eth0 up
    echo "$addr" > "$STATE/host-$name"
    n=$((n + 1))
    echo "$name $addr"
  done
}

down() {
  for f in "$STATE"/host-*; do
    [[ -e $f ]] || continue
    local name=${f##*/host-}
    for pid in $(ip netns pids "$PREFIX-$name" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in $(ip netns pids "$PREFIX-$name" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$PREFIX-$name" 2>/dev/null || true
    rmdir "/sys/fs/cgroup/$PREFIX-$name" "/sys/fs/cgroup/cpu/$PREFIX-$name" "/sys/fs/cgroup/cpuacct/$PREFIX-$name" 2>/dev/null || true
    rm -rf "/var/lib/lab-$PREFIX/$name" "$f"
  done
  ip netns del "$FABRIC" 2>/dev/null || true
  rm -rf "$STATE"
}

run() {
  local name=$1; shift
  [[ -e $STATE/host-$name ]] || die "no host $name (lab.sh up $name)"
  local cpu="" hide=""
  while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
      --cpu) cpu=$2; shift 2 ;;
      --hide) [[ -d $2 ]] || die "--hide $2: no such folder"; hide+="$(readlink -f "$2")"$'\n'; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ ${1:-} == -- ]] && shift
  [[ $# -gt 0 ]] || die "run: no command"
  [[ -n $cpu ]] && echo $$ > "$(cgroup_dir "$name" "$cpu")"
  local hostrun=/var/lib/lab-$PREFIX/$name/run
  mkdir -p "$hostrun"
  export LAB_HIDE=$hide
  # ip netns exec mounts a sysfs of its own, without the cgroup hierarchies: the CPU controllers are mounted again
  # inside, so that a host sees its CPU cap as a machine does (swlaunch's wrappers count its cores from it).
  local cgroups=""
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    cgroups=v2
  else
    while read -r target options; do
      local controllers; controllers=$(tr , '\n' <<<"$options" | grep -xE 'cpu|cpuacct' | paste -sd, -) || true
      [[ -n $controllers ]] && cgroups+="$(basename "$target") $controllers"$'\n'
    done < <(findmnt -rn -t cgroup -o TARGET,OPTIONS)
  fi
  export LAB_CGROUPS=$cgroups
  exec ip netns exec "$PREFIX-$name" unshare --mount --propagation private \
    sh -c 'mount --bind "$0" /run || exit 1
      if [ "$LAB_CGROUPS" = v2 ]; then
        mount -t cgroup2 lab-cgroup /sys/fs/cgroup 2>/dev/null
      elif [ -n "$LAB_CGROUPS" ] && mount -t tmpfs -o mode=0755 lab-cgroups /sys/fs/cgroup 2>/dev/null; then
        printf "%s" "$LAB_CGROUPS" | while read -r dir controllers; do
          mkdir -p "/sys/fs/cgroup/$dir" && mount -t cgroup -o "$controllers" cgroup "/sys/fs/cgroup/$dir" 2>/dev/null
        done
      fi
      printf "%s" "$LAB_HIDE" | while IFS= read -r d; do
        [ -n "$d" ] && { mount -t tmpfs -o size=1m,mode=0755 lab-hidden "$d" || exit 1; }
      done
      exec "$@"' "$hostrun" "$@"
}

cpu_file() { # the file that counts a host's CPU time: cgroup v2 cpu.stat (usage_usec) or v1 cpuacct.usage (ns)
  local name=$1 f
  for f in "/sys/fs/cgroup/$PREFIX-$name/cpu.stat" "/sys/fs/cgroup/cpuacct/$PREFIX-$name/cpuacct.usage" \
           "/sys/fs/cgroup/cpu/$PREFIX-$name/cpuacct.usage"; do
    [[ -f $f ]] && { echo "$f"; return; }
  done
  die "no CPU accounting for $name (run something there with --cpu first)"
}

cpu() { # CPU seconds of a host's cgroup (what `run --cpu` started there)
  local f; f=$(cpu_file "$1")
  case $f in
    */cpu.stat) awk '$1 == "usage_usec" { printf "%.2f\n", $2 / 1e6 }' "$f" ;;
    *) awk '{ printf "%.2f\n", $1 / 1e9 }' "$f" ;;
  esac
}

case ${1:-} in
  up) shift; up "$@" ;;
  cpu) cpu "$2" ;;
  cpu-file) cpu_file "$2" ;;
  down) down ;;
  ip) cat "$STATE/host-$2" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
