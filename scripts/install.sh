#!/usr/bin/env bash
# Installs swlaunch: the programs, the masquerade directory, systemd units and the CMake module.
#   scripts/install.sh [--prefix DIR] [--no-user]     (default /usr/local)
#   scripts/install.sh [--prefix DIR] --uninstall
# As root it creates the system user "swlaunch" that swlaunchd runs as (--no-user skips that; the user is
# kept on --uninstall, as packages do).
# Installs from .build/release (built first if missing), or from $SWLAUNCH_BIN when set.
# Layout under the prefix:
#   bin/swlaunch bin/swlaunch-ctl bin/swlaunchd bin/swlaunch-scheduler
#   lib/swlaunch/bin/{cc,c++,gcc,g++,clang,clang++} -> ../../../bin/swlaunch   (put first on PATH)
#   lib/systemd/system/swlaunchd.service lib/systemd/system/swlaunch-scheduler.service
#   share/swlaunch/cmake/swlaunch.cmake
#   share/swlaunch/colcon/index.yaml share/swlaunch/colcon/swlaunch.mixin   (colcon mixin add swlaunch file://...)
#   share/swlaunch/install-manifest.txt   (what --uninstall removes)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local
uninstall=0
make_user=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-user) make_user=0; shift ;;
    --prefix) prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
manifest=$prefix/share/swlaunch/install-manifest.txt

if [[ $uninstall == 1 ]]; then
  [[ -f $manifest ]] || { echo "install.sh: nothing installed under $prefix (no $manifest)" >&2; exit 1; }
  while IFS= read -r f; do rm -f "$f"; done < "$manifest"
  rm -f "$manifest"
  for d in lib/swlaunch/bin lib/swlaunch share/swlaunch/cmake share/swlaunch/colcon share/swlaunch lib/systemd/system lib/systemd; do
    rmdir "$prefix/$d" 2>/dev/null || true
  done
  echo "removed swlaunch from $prefix"
  exit 0
fi

bin=${SWLAUNCH_BIN:-.build/release}
if [[ -z ${SWLAUNCH_BIN:-} && ! -x $bin/swlaunch ]]; then
  swift build -c release --static-swift-stdlib
fi
for p in swlaunch swlaunch-ctl swlaunchd swlaunch-scheduler; do
  [[ -x $bin/$p ]] || { echo "install.sh: $bin/$p is missing" >&2; exit 1; }
done
installed=()
put() { installed+=("$1"); }
mkdir -p "$prefix/bin" "$prefix/lib/swlaunch/bin" "$prefix/lib/systemd/system" "$prefix/share/swlaunch/cmake" "$prefix/share/swlaunch/colcon"
for p in swlaunch swlaunch-ctl swlaunchd swlaunch-scheduler; do
  install -m 0755 "$bin/$p" "$prefix/bin/$p.new" && mv -f "$prefix/bin/$p.new" "$prefix/bin/$p"
  put "$prefix/bin/$p"
done
for c in cc c++ gcc g++ clang clang++; do
  ln -sfn ../../../bin/swlaunch "$prefix/lib/swlaunch/bin/$c"
  put "$prefix/lib/swlaunch/bin/$c"
done
cat > "$prefix/lib/systemd/system/swlaunchd.service" <<UNIT
[Unit]
Description=swlaunch daemon: distributes compiles and runs them for peers
After=network-online.target
Wants=network-online.target

[Service]
# Least privilege: its own unprivileged user. Jobs from peers run in bubblewrap sandboxes made with
# unprivileged user namespaces; launchers are served with their own rights only (SO_PEERCRED).
User=swlaunch
Group=swlaunch
ExecStart=$prefix/bin/swlaunchd
RuntimeDirectory=swlaunch
RuntimeDirectoryMode=0755
StateDirectory=swlaunch
StateDirectoryMode=0700
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
TasksMax=4096
# SIGTERM stops it; the cluster key: cluster.key_file in /etc/swlaunch/config.toml (mode 0600, owned by swlaunch).
Restart=on-failure
# SIGTERM drains: running compiles finish (at most 300 s) before the daemon exits.
TimeoutStopSec=320

[Install]
WantedBy=multi-user.target
UNIT
put "$prefix/lib/systemd/system/swlaunchd.service"
cat > "$prefix/lib/systemd/system/swlaunch-scheduler.service" <<UNIT
[Unit]
Description=swlaunch scheduler: places compiles on the fastest free helper
After=network-online.target
Wants=network-online.target

[Service]
User=swlaunch
Group=swlaunch
ExecStart=$prefix/bin/swlaunch-scheduler
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
put "$prefix/lib/systemd/system/swlaunch-scheduler.service"
if [[ $make_user == 1 && $(id -u) == 0 ]] && ! getent passwd swlaunch >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/swlaunch --no-create-home --shell /usr/sbin/nologin \
    --comment "swlaunch daemon" swlaunch
  echo "created the system user swlaunch"
fi
install -m 0644 cmake/swlaunch.cmake "$prefix/share/swlaunch/cmake/swlaunch.cmake"
put "$prefix/share/swlaunch/cmake/swlaunch.cmake"
# A colcon mixin that puts the launcher in every package's CMake arguments (the job count stays colcon's: use
# `swlaunch colcon build` for that).
printf 'mixin:\n  - swlaunch.mixin\n' > "$prefix/share/swlaunch/colcon/index.yaml"
cat > "$prefix/share/swlaunch/colcon/swlaunch.mixin" <<MIXIN
{
    "build": {
        "swlaunch": {
            "cmake-args": ["-DCMAKE_C_COMPILER_LAUNCHER=$prefix/bin/swlaunch", "-DCMAKE_CXX_COMPILER_LAUNCHER=$prefix/bin/swlaunch"]
        }
    }
}
MIXIN
put "$prefix/share/swlaunch/colcon/index.yaml"
put "$prefix/share/swlaunch/colcon/swlaunch.mixin"
printf '%s\n' "${installed[@]}" > "$manifest"
cat <<EOT
installed swlaunch under $prefix
  compile through it:   CMake: -DCMAKE_PROJECT_TOP_LEVEL_INCLUDES=$prefix/share/swlaunch/cmake/swlaunch.cmake
                        make and others: PATH=$prefix/lib/swlaunch/bin:\$PATH, or swlaunch make|ninja|colcon|catkin
                        colcon mixin: colcon mixin add swlaunch file://$prefix/share/swlaunch/colcon/index.yaml
                                      && colcon mixin update swlaunch && colcon build --mixin swlaunch
  services:             systemctl daemon-reload && systemctl enable --now swlaunchd   (and swlaunch-scheduler on one machine)
  settings:             /etc/swlaunch/config.toml (scheduler.address = "HOST:8775", cluster.key_file), then: swlaunch doctor
  cluster key:          swlaunch key generate /etc/swlaunch/cluster.key; chown swlaunch: /etc/swlaunch/cluster.key;
                        copy the same file to every machine
EOT
