#!/usr/bin/env bash
# pi-lab.sh: an emulated Raspberry Pi beside two x86_64 helpers, the story this project comes from. The Pi is a
# Debian armhf root (debootstrap) whose programs run under qemu-user through binfmt_misc, about twenty times
# slower than the host, in its own network namespace (scripts/lab.sh) and held to --pi-cpu cores; it compiles
# with its native g++. No ARM build of Swift exists here, so swlaunch's x86_64 launcher and daemon stand in for
# native ones: they run inside the root (multiarch amd64 libraries), so the daemon sees the Pi's files at the
# Pi's paths. Helpers compile the Pi's jobs with Debian's x86_64 arm-linux-gnueabihf cross compiler, which the
# Pi packs and checks itself (`swlaunch env create --stand-in-for g++`, from the cross compiler installed as
# g++-arm-linux-gnueabihf:amd64 beside its own).
#
#   scripts/pi-lab.sh setup                   install what it needs and make the armhf root (once; long)
#   scripts/pi-lab.sh library [--runs N] [--package P] [--jobs J]
#                                             a Debian C++ library built on the Pi locally, with icecream (the
#                                             Pi's daemon --no-remote, icecc-create-env of the cross compiler,
#                                             ICECC_VERSION=x86_64:<env>) and with swlaunch; wall time, the Pi's
#                                             CPU seconds, every object and .d file compared with the local build
#   scripts/pi-lab.sh mismatch                a stand-in of other target defaults (armel) is refused, naming
#                                             both; the build goes on locally
#   scripts/pi-lab.sh ros                     ros-geometry with `swlaunch colcon build` on the Pi
#   scripts/pi-lab.sh shell                   a shell on the Pi (with the cluster running)
# Options: --pi-cpu F (default 1), --root DIR (default /var/lib/swlaunch-pi/root), --work DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
command=${1:-}; [[ $# -gt 0 ]] && shift
root=/var/lib/swlaunch-pi/root
work=/tmp/swlaunch-pi
pi_cpu=1
runs=1
package=yaml-cpp
jobs=4
while [[ $# -gt 0 ]]; do
  case $1 in
    --root) root=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --pi-cpu) pi_cpu=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --package) package=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mirror=http://deb.debian.org/debian
suite=bookworm
ready=$root/.swlaunch-pi-ready
bin=$repo/.build/release
export LAB_PREFIX=swpi LAB_SUBNET=198.18.8
lab=$repo/scripts/lab.sh

# binfmt_misc with Debian's qemu-arm registered (qemu-user-static's F flag: the interpreter is opened when the
# entry is made, so it works inside the root without a copy of qemu there).
binfmt() {
  [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [[ -e /proc/sys/fs/binfmt_misc/qemu-arm ]] && return
  local conf=/usr/lib/binfmt.d/qemu-arm.conf
  [[ -f $conf ]] || { echo "no $conf (apt-get install qemu-user-static)" >&2; exit 2; }
  grep -v '^#' "$conf" | head -1 > /proc/sys/fs/binfmt_misc/register
}

# The root's kernel file systems, mounted on first use and left for `teardown`.
mounts() {
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  mountpoint -q "$root/dev" || mount --rbind /dev "$root/dev"
  mountpoint -q "$root/sys" || mount --rbind /sys "$root/sys"
}
teardown() {
  for m in sys dev proc; do umount -R "$root/$m" 2>/dev/null || umount -l "$root/$m" 2>/dev/null || true; done
}

# in_root CMD...: CMD in the Pi's root on this machine's network (for apt).
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}
# on_pi CMD...: CMD on the lab Pi: its namespace, its CPU cap, its root.
on_pi() {
  "$lab" run pi --cpu "$pi_cpu" -- chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "$@"
}

setup() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static g++-arm-linux-gnueabihf \
    g++-arm-linux-gnueabi icecc bubblewrap iproute2 >/dev/null
  binfmt
  if [[ ! -e $root/.debootstrap-done ]]; then
    teardown
    rm -rf "$root"; mkdir -p "$root"
    echo "== debootstrap armhf $suite into $root (the second stage runs under qemu)"
    debootstrap --arch=armhf --variant=minbase --include=g++,make,cmake,ninja-build,ca-certificates,python3 \
      "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || { tail -20 "$root.debootstrap.log"; exit 1; }
    touch "$root/.debootstrap-done"
  fi
  if [[ ! -e $ready ]]; then
    # Packages must not start their services inside the root (icecc's would run on this machine's network).
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
    # The main archive only: the native and cross compilers must come from the same point release.
    printf 'deb %s %s main\ndeb-src %s %s main\n' "$mirror" "$suite" "$mirror" "$suite" > "$root/etc/apt/sources.list"
    mounts
    # The cross compiler cannot be installed this way (its Architecture: all dependencies would have to be
    # armhf's); `swlaunch env create --package` downloads and unpacks it instead.
    echo "== amd64 beside armhf: the libraries swlaunch's x86_64 programs need; icecream"
    in_root dpkg --add-architecture amd64
    in_root apt-get update -qq
    in_root apt-get install -y -qq libc6:amd64 libstdc++6:amd64 libzstd1:amd64 libarchive13:amd64 icecc >/dev/null
    touch "$ready"
  fi
  echo "the Pi's root: $root ($(du -sh --exclude=proc --exclude=sys --exclude=dev "$root" 2>/dev/null | cut -f1)), $(in_root g++ --version | head -1)"
}

# install_swlaunch: the repo's programs copied into the root, the Pi's stand-in environment made and checked there.
install_swlaunch() {
  [[ -x $bin/swlaunchd ]] || swift build -c release --static-swift-stdlib
  install -m 0755 "$bin/swlaunch" "$bin/swlaunchd" "$bin/swlaunch-ctl" "$root/usr/local/bin/"
  mkdir -p "$root/etc/swlaunch" "$root/var/lib/swlaunch/envs"
  cp "$work/cluster.key" "$root/etc/swlaunch/cluster.key"
  if [[ ! -e $root/var/lib/swlaunch/envs/armhf-cross.tar.zst ]]; then
    echo "== on the Pi: swlaunch env create --package g++-arm-linux-gnueabihf:amd64 --stand-in-for gcc --stand-in-for g++"
    in_root swlaunch env create --package g++-arm-linux-gnueabihf:amd64 --stand-in-for gcc --stand-in-for g++ \
      -o /var/lib/swlaunch/envs/armhf-cross.tar.zst
  fi
  cat > "$root/etc/swlaunch/config.toml" <<'EOF'
[cluster]
key_file = "/etc/swlaunch/cluster.key"

[toolchains]
gcc = { x86_64-linux = "/var/lib/swlaunch/envs/armhf-cross.tar.zst" }
"g++" = { x86_64-linux = "/var/lib/swlaunch/envs/armhf-cross.tar.zst" }
EOF
}

# start_lab: the Pi and two helpers, swlaunch's scheduler and daemons (ports 8775/8776) and icecream's
# (8765/10245) side by side; helpers cannot see the Pi's root.
start_lab() {
  [[ -e $ready ]] || { echo "run scripts/pi-lab.sh setup first" >&2; exit 2; }
  binfmt
  mounts
  rm -rf "$work"; mkdir -p "$work/ice"; chmod 777 "$work/ice"
  "$lab" down >/dev/null 2>&1 || true
  trap '"$lab" down >/dev/null 2>&1 || true; teardown' EXIT
  "$lab" up pi h1 h2 >/dev/null
  h1=$("$lab" ip h1)
  "$bin/swlaunch" key generate "$work/cluster.key" >/dev/null
  install_swlaunch
  "$lab" run h1 -- "$bin/swlaunch-scheduler" --listen 0.0.0.0:8775 --key-file "$work/cluster.key" >"$work/scheduler.log" 2>&1 &
  for h in h1 h2; do
    "$lab" run $h --hide "$root" -- "$bin/swlaunchd" --name $h --listen 0.0.0.0:8776 --scheduler "$h1:8775" \
      --state-dir "$work/state-$h" --max-jobs 1 --key-file "$work/cluster.key" >"$work/$h.log" 2>&1 &
    "$lab" run $h --hide "$root" -- iceccd -s "$h1" -N "ice-$h" -b "$work/ice/env-$h" -l "$work/ice/iceccd-$h.log" -m 1 -vv &
  done
  "$lab" run h1 -- icecc-scheduler -l "$work/ice/scheduler.log" -vv &
  on_pi swlaunchd --name pi --no-remote --platform armv7l-linux --local-jobs 1 --scheduler "$h1:8775" \
    --state-dir /var/lib/swlaunch >"$work/pi.log" 2>&1 &
  on_pi iceccd -s "$h1" -N ice-pi --no-remote -m 1 -l /tmp/iceccd-pi.log -vv &
  for _ in $(seq 150); do
    n=$(on_pi swlaunch status --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hosts"]))' 2>/dev/null || echo 0)
    [[ $n == 3 ]] && break
    sleep 0.4
  done
  on_pi swlaunch status
  # icecream's environment for the Pi, as its users make one: icecc-create-env with the cross compiler, on x86_64.
  (cd "$work/ice" && icecc-create-env --gcc /usr/bin/arm-linux-gnueabihf-gcc /usr/bin/arm-linux-gnueabihf-g++ >create-env.log 2>&1)
  ice_env=$(ls "$work"/ice/*.tar.gz | head -1)
  mkdir -p "$root/root/icecc"; cp "$ice_env" "$root/root/icecc/armhf-cross.tar.gz"
}

# pi_build NAME LAUNCHER [ENV...]: a clean CMake build (Unix Makefiles, which keep the compilers' -MD files;
# RelWithDebInfo: -O2 -g) of /root/src/$package on the Pi, in /root/build (the same folder for every variant, since
# -g records it), kept as /root/build-NAME; prints "wall cpu".
pi_build() {
  local name=$1 launcher=$2; shift 2
  local cmake_launcher=()
  [[ -n $launcher ]] && cmake_launcher=(-DCMAKE_C_COMPILER_LAUNCHER="$launcher" -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
  rm -rf "$root/root/build" "$root/root/build-$name"
  on_pi "$@" CC=gcc CXX=g++ cmake -S "/root/src/$package" -B /root/build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${cmake_launcher[@]}" $cmake_extra >"$work/configure-$name.log" 2>&1 || { tail -20 "$work/configure-$name.log" >&2; exit 1; }
  local cpu0 t0; cpu0=$("$lab" cpu pi); t0=$(date +%s.%N)
  on_pi "$@" make -C /root/build -j"$jobs" >"$work/build-$name.log" 2>&1 || { tail -20 "$work/build-$name.log" >&2; exit 1; }
  python3 -c "print(round($(date +%s.%N) - $t0, 1), round($("$lab" cpu pi) - $cpu0, 1))"
  mv "$root/root/build" "$root/root/build-$name"
}

# ice_remote: compiles icecream's helpers have finished so far.
ice_remote() { cat "$work"/ice/iceccd-h1.log "$work"/ice/iceccd-h2.log 2>/dev/null | grep -c "Remote compilation completed" || true; }

# compare NAME: every object and dependency file of build NAME against the local build's; the objects with the
# .comment section (which names the compiler's package revision) removed from both.
compare() {
  local name=$1 differ=0 same=0 total=0 f
  while IFS= read -r f; do
    total=$((total + 1))
    local a=$root/root/build-local/$f b=$root/root/build-$name/$f
    if cmp -s "$a" "$b"; then same=$((same + 1)); continue; fi
    if [[ $f == *.o ]]; then
      arm-linux-gnueabihf-objcopy --remove-section .comment "$a" "$work/a.o"
      arm-linux-gnueabihf-objcopy --remove-section .comment "$b" "$work/b.o"
      cmp -s "$work/a.o" "$work/b.o" && continue
    fi
    echo "DIFFERS: $f" >&2; differ=$((differ + 1))
  done < <(cd "$root/root/build-local" && find . -name '*.o' -o -name '*.o.d' | sort)
  echo "$total $same $differ"
}

library() {
  [[ -x $bin/swlaunch ]] || swift build -c release --static-swift-stdlib
  start_lab
  rm -rf "$root/root/src"; mkdir -p "$root/root/src" "$work/download"
  (cd "$work/download" && apt-get source --download-only "$package" >/dev/null 2>&1) || true
  local orig; orig=$(ls "$work"/download/*.orig.tar.* | head -1)
  tar -xf "$orig" -C "$root/root/src"
  mv "$root/root/src/"*/ "$root/root/src/$package"
  cmake_extra=""
  [[ $package == yaml-cpp ]] && cmake_extra="-DYAML_CPP_BUILD_TESTS=OFF -DYAML_CPP_BUILD_TOOLS=ON"
  echo "== $package on the Pi: $(find "$root/root/src/$package" -name '*.cpp' | wc -l) C++ files; Pi at $pi_cpu core(s), make -j$jobs"
  declare -A wall cpu
  # The local build once (emulated, it varies little and takes long), then icecream and swlaunch in turns.
  read -r w c < <(pi_build local ""); wall[local]="$w"; cpu[local]="$c"; echo "local: $w s, Pi CPU $c s"
  for run in $(seq "$runs"); do
    if (( run % 2 )); then order=(icecc swlaunch); else order=(swlaunch icecc); fi
    for kind in "${order[@]}"; do
      if [[ $kind == icecc ]]; then
        local before; before=$(ice_remote)
        read -r w c < <(pi_build icecc icecc ICECC_VERSION=x86_64:/root/icecc/armhf-cross.tar.gz)
        echo "run $run: icecream $w s, Pi CPU $c s ($(( $(ice_remote) - before )) compiled on the helpers)"
      else
        on_pi swlaunch stats --reset >/dev/null
        read -r w c < <(pi_build swlaunch /usr/local/bin/swlaunch)
        echo "run $run: swlaunch $w s, Pi CPU $c s ($(on_pi swlaunch stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["remote"], "remote,", d["fallback"], "fallback", d["fallback_reasons"], "local", d["local"])'))"
      fi
      wall[$kind]+="$w "; cpu[$kind]+="$c "
    done
  done
  read -r total same differ < <(compare swlaunch)
  echo "swlaunch: $total objects and dependency files, $same byte-identical, $((total - same - differ)) identical without .comment, $differ differ"
  read -r itotal isame idiffer < <(compare icecc)
  echo "icecream: $itotal objects and dependency files, $isame byte-identical, $((itotal - isame - idiffer)) identical without .comment, $idiffer differ"
  if [[ $package == yaml-cpp ]]; then
    echo "the swlaunch-built parse tool under qemu: $(printf 'a: [1, 2]\nb: {c: d}\n' | on_pi /root/build-swlaunch/util/parse 2>&1 | tr '\n' ' ')"
  elif [[ $package == libebml ]]; then
    # libebml builds no program of its own: one that renders an element, compiled through
    # swlaunch like the library and linked with the swlaunch-built libebml.a, runs on the Pi.
    cat > "$root/root/ebml-check.cpp" <<'EOF'
#include <ebml/EbmlVersion.h>
#include <ebml/EbmlSubHead.h>
#include <ebml/MemIOCallback.h>
#include <cstdio>
using namespace libebml;
int main() {
  MemIOCallback io;
  EVersion version;
  version.SetValue(4);
  const auto written = version.Render(io);
  std::printf("libebml %s: rendered EBMLVersion %llu in %llu bytes\n", EbmlCodeVersion.c_str(),
              static_cast<unsigned long long>(static_cast<uint64>(version)), static_cast<unsigned long long>(written));
}
EOF
    on_pi sh -c 'cd /root && swlaunch g++ -O2 -g -DEBML_STATIC_DEFINE -I/root/src/libebml -I/root/build-swlaunch -c ebml-check.cpp -o ebml-check.o \
      && g++ ebml-check.o /root/build-swlaunch/libebml.a -o ebml-check && ./ebml-check' 2>&1 | sed 's/^/the swlaunch-built ebml-check under qemu: /'
  fi
  python3 - "${wall[local]}" "${cpu[local]}" "${wall[icecc]}" "${cpu[icecc]}" "${wall[swlaunch]}" "${cpu[swlaunch]}" "$package" "$pi_cpu" <<'PY'
import statistics, sys
v = [[float(x) for x in a.split()] for a in sys.argv[1:7]]
(lw, lc, iw, ic, sw, sc), package, cpu = [statistics.median(x) for x in v], sys.argv[7], sys.argv[8]
n = len(v[0])
print(f"\n| {package} on the emulated Pi ({cpu} core), medians of {len(v[2])} runs (local: 1) | wall | vs local | Pi CPU s |")
print("|---|---|---|---|")
print(f"| local (native g++ under qemu) | {lw:.1f} s | 1.00 | {lc:.1f} |")
print(f"| icecream 1.4 (ICECC_VERSION=x86_64:cross env) | {iw:.1f} s | {lw / iw:.2f}x | {ic:.1f} |")
print(f"| swlaunch ([toolchains] stand-in) | {sw:.1f} s | {lw / sw:.2f}x | {sc:.1f} |")
print(f"swlaunch against icecream: {sw / iw:.2f} of its wall time, {sc / ic:.2f} of its Pi CPU seconds")
PY
  [[ $differ == 0 ]]
}

mismatch() {
  start_lab
  echo "== on the Pi: swlaunch doctor (the armhf stand-in: same gcc, package revisions differ)"
  on_pi swlaunch doctor | grep -E "toolchain" || true
  echo "== on the Pi: Debian's armel cross compiler (other target defaults) offered as a stand-in for the armhf g++"
  if in_root swlaunch env create --package g++-arm-linux-gnueabi:amd64 --stand-in-for g++ -o /var/lib/swlaunch/envs/armel.tar.zst \
       2>"$work/mismatch.err"; then
    echo "FAIL: accepted"; exit 1
  fi
  echo "refused: $(grep -v '^note:' "$work/mismatch.err")"
  echo "== the Pi's g++ becomes gcc 11 (as after an upgrade or alternatives change): the gcc 12 stand-in is refused, the build compiles locally"
  [[ -x $root/usr/bin/g++-11 ]] || in_root apt-get install -y -qq g++-11 >/dev/null
  local previous; previous=$(readlink "$root/usr/bin/g++")
  ln -sfn g++-11 "$root/usr/bin/g++"
  trap 'ln -sfn "'"$previous"'" "'"$root"'/usr/bin/g++"; "$lab" down >/dev/null 2>&1 || true; teardown' EXIT
  on_pi swlaunch doctor | grep -E "toolchain g\+\+" || true
  rm -rf "$root/root/src"; mkdir -p "$root/root/src/hello"
  printf '#include <cstdio>\nint main() { std::puts("hello from the Pi"); }\n' > "$root/root/src/hello/hello.cpp"
  on_pi swlaunch stats --reset >/dev/null
  on_pi sh -c 'cd /root/src/hello && swlaunch g++ -O2 -g -MD -c hello.cpp -o hello.o && g++ hello.o -o hello && ./hello'
  on_pi swlaunch stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("swlaunch stats:", d["remote"], "remote,", d["fallback"], "fallback", d["fallback_reasons"])'
  grep -o "was made to stand in for [^\"]*" "$work/pi.log" | tail -1
}

ros() {
  start_lab
  if [[ ! -e $root/.swlaunch-pi-ros ]]; then
    echo "== ros-geometry's build dependencies and colcon into the Pi's root (under qemu: long)"
    in_root apt-get build-dep -y -qq ros-geometry >/dev/null
    in_root apt-get install -y -qq colcon python3-colcon-ros python3-colcon-cmake >/dev/null
    touch "$root/.swlaunch-pi-ros"
  fi
  rm -rf "$root/root/ws"; mkdir -p "$root/root/ws/src" "$work/download"
  (cd "$work/download" && apt-get source --download-only ros-geometry >/dev/null 2>&1) || true
  tar -xf "$(ls "$work"/download/ros-geometry*.orig.tar.* | head -1)" -C "$root/root/ws/src"
  on_pi swlaunch stats --reset >/dev/null
  local t0; t0=$(date +%s.%N); local cpu0; cpu0=$("$lab" cpu pi)
  (on_pi sh -c 'cd /root/ws && CC=gcc CXX=g++ swlaunch colcon build --event-handlers console_direct-' >"$work/ros.log" 2>&1) \
    || { tail -30 "$work/ros.log"; exit 1; }
  echo "swlaunch colcon build on the Pi: $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s, Pi CPU $(python3 -c "print(round($("$lab" cpu pi) - $cpu0, 1))") s"
  grep "^swlaunch colcon:" "$work/ros.log" || true
  on_pi swlaunch stats --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("compiles:", d["remote"], "remote of", d["remote"] + d["fallback"], "fallback", d["fallback_reasons"], "local", d["local"], d["local_reasons"], "inputs", d["input_scans"])'
}

case $command in
  setup) setup ;;
  library) library ;;
  mismatch) mismatch ;;
  ros) ros ;;
  shell) start_lab; on_pi bash -i ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
