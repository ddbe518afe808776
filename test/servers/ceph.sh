#!/usr/bin/env bash
# Single-node Ceph 16 S3 test server: 1 mon + 1 memstore OSD + radosgw (beast), all on
# 127.0.0.1, cephx with one shared keyring, no mgr. Data lives in RAM and is gone on stop.
#
#   ceph.sh install   install the Debian packages (root + apt-get; exit 3 when impossible)
#   ceph.sh start     start the cluster and create the S3 user; reports ready if already up
#   ceph.sh stop      stop the daemons and remove the state directory
#   ceph.sh status    exit 0 and print the endpoint when it answers, exit 1 otherwise
#
# Environment:
#   CPV_CEPH_ROOT            state directory (default /tmp/cpv-ceph-$UID)
#   CPV_CEPH_PORT            radosgw HTTP port on 127.0.0.1 (default 18081)
#   CPV_CEPH_MON_PORT        mon msgr2 port (default: first free port from 13300)
#   CPV_CEPH_MEMSTORE_BYTES  RAM cap of the OSD (default 1.5 GiB)
#   CPV_CEPH_START_TIMEOUT   seconds to wait for radosgw (default 120)
#
# S3: endpoint http://127.0.0.1:$CPV_CEPH_PORT, access key cpvtest, secret cpvtestsecret,
# region us-east-1, path-style addressing.
set -eEu
# The command that made start fail, for its last line (set -E: also inside functions).
FAIL_REASON=
trap '[ -n "$FAIL_REASON" ] || FAIL_REASON="failed: $BASH_COMMAND"' ERR

ROOT=${CPV_CEPH_ROOT:-/tmp/cpv-ceph-$(id -u)}
PORT=${CPV_CEPH_PORT:-18081}
MEMSTORE_BYTES=${CPV_CEPH_MEMSTORE_BYTES:-1610612736}
START_TIMEOUT=${CPV_CEPH_START_TIMEOUT:-120}
ACCESS_KEY=cpvtest
SECRET_KEY=cpvtestsecret
CONF=$ROOT/ceph.conf
RUN=$ROOT/run
LOG=$ROOT/log

SERVER=ceph
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# A process counts as alive when it exists, is not a zombie (an init that does not reap
# may leave those behind) and runs the program we started under that pid.
alive() { # pid comm
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ "$st" != Z ] || return 1
  [ -z "${2:-}" ] || [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

# --- install ---------------------------------------------------------------------------
cmd_install() {
  local need="" t0
  for b in radosgw radosgw-admin ceph-mon ceph-osd ceph ceph-authtool monmaptool; do
    command -v "$b" >/dev/null 2>&1 || need=1
  done
  local pkgs=""
  [ -z "$need" ] || pkgs="radosgw ceph-mon ceph-osd"
  command -v curl >/dev/null 2>&1 || pkgs="$pkgs curl"
  pkgs=$(echo $pkgs)
  if [ -z "$pkgs" ]; then say "already installed ($(ceph-osd --version 2>/dev/null | awk '{print $3}'))"; return 0; fi
  if [ "$(id -u)" != 0 ]; then echo "ceph: cannot install $pkgs: not root (run as root or pre-install the Debian packages)" >&2; exit 3; fi
  if ! command -v apt-get >/dev/null 2>&1; then echo "ceph: cannot install $pkgs: apt-get not found (Debian 12 packages radosgw ceph-mon ceph-osd needed)" >&2; exit 3; fi
  t0=$(now)
  apt_install $pkgs
  say "installed $pkgs in $(since "$t0") s"
}

# apt-get update once, then install without recommends and without starting services.
apt_install() {
  local tmp_policy="" logf
  logf=$(mktemp)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && tmp_policy=1
  fi
  local rc=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 update &&
      DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 install --no-install-recommends "$@"
  } > "$logf" 2>&1 || rc=$?
  [ -z "$tmp_policy" ] || { rm -f /usr/sbin/policy-rc.d; trap - EXIT INT TERM; }
  if [ "$rc" != 0 ]; then tail -n 30 "$logf" >&2; rm -f "$logf"; die "apt-get install $* failed (exit $rc)"; fi
  rm -f "$logf"
}

# --- status ----------------------------------------------------------------------------
running_port() { cat "$RUN/port" 2>/dev/null || echo "$PORT"; }

is_up() {
  [ -f "$RUN/ready" ] || return 1
  for d in mon:ceph-mon osd:ceph-osd rgw:radosgw; do
    alive "$(cat "$RUN/${d%%:*}.pid" 2>/dev/null || echo 0)" "${d#*:}" || return 1
  done
  [ "$(http_code "http://127.0.0.1:$(running_port)/")" = 200 ]
}

cmd_status() {
  if is_up; then
    say "running: http://127.0.0.1:$(running_port) access key $ACCESS_KEY (state $ROOT)"
  else
    say "not running (state $ROOT)"; return 1
  fi
}

stop_daemons() {
  local d groups=""
  # All state is thrown away, so there is nothing to shut down cleanly: a memstore OSD
  # would write its whole RAM store to disk on SIGTERM, and radosgw hangs on SIGTERM once
  # its OSD is gone. Everything gets SIGKILL.
  for d in rgw:radosgw:KILL osd:ceph-osd:KILL mon:ceph-mon:KILL; do
    [ -f "$RUN/${d%%:*}.pid" ] && groups="$groups $(cat "$RUN/${d%%:*}.pid"):${d#*:}"
  done
  # shellcheck disable=SC2086
  stop_groups $groups
  rm -f "$RUN"/*.pid "$RUN/ready"
}

cmd_stop() {
  if [ ! -d "$ROOT" ]; then say "not running"; return 0; fi
  stop_daemons
  rm -rf "$ROOT"
  say "stopped"
}

# --- start -----------------------------------------------------------------------------
tail_logs() {
  local f
  for f in "$LOG"/*.out "$LOG"/*.log; do
    [ -s "$f" ] || continue
    printf '%s\n' "--- $f (last 20 lines)" >&2
    tail -n 20 "$f" >&2
  done
}

pick_mon_port() {
  local p
  if [ -n "${CPV_CEPH_MON_PORT:-}" ]; then
    port_busy "$CPV_CEPH_MON_PORT" && die "mon port $CPV_CEPH_MON_PORT is in use (set CPV_CEPH_MON_PORT)"
    echo "$CPV_CEPH_MON_PORT"; return
  fi
  for p in $(seq 13300 13399); do
    port_busy "$p" || { echo "$p"; return; }
  done
  die "no free mon port in 13300-13399 (set CPV_CEPH_MON_PORT)"
}



cmd_start() {
  local t0 fsid mon_port code d deadline
  for b in radosgw ceph-mon ceph-osd ceph-authtool monmaptool curl; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found: run '$0 install' first"
  done
  if is_up; then
    say "already running: ready at http://127.0.0.1:$(running_port)"
    return 0
  fi
  # Leftovers of a crashed or half-started run.
  [ ! -d "$ROOT" ] || { stop_daemons; rm -rf "$ROOT"; }
  port_busy "$PORT" && die "port $PORT on 127.0.0.1 is in use by another program (set CPV_CEPH_PORT)"
  mon_port=$(pick_mon_port)

  t0=$(now)
  mkdir -p "$ROOT/mon" "$ROOT/osd/ceph-0" "$RUN" "$LOG"
  trap start_failed EXIT
  echo "$PORT" > "$RUN/port"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat > "$CONF" <<EOC
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
mon_initial_members = a
public_network = 127.0.0.0/8
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv4 = true
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0
# Commit mon map changes quickly: each rgw pool creation is a few mon commands, which the
# default 1 s proposal interval turns into seconds of start-up and first-bucket latency.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
run_dir = $RUN
admin_socket = $RUN/\$cluster-\$name.asok
log_file = $LOG/\$name.log
keyring = $ROOT/keyring
mon_data = $ROOT/mon/\$cluster-\$id
osd_data = $ROOT/osd/\$cluster-\$id
osd_objectstore = memstore
memstore_device_bytes = $MEMSTORE_BYTES
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$PORT
rgw_dns_name = localhost
EOC
  ceph-authtool --create-keyring "$ROOT/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$ROOT/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$ROOT/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$ROOT/keyring" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$ROOT/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$ROOT/monmap" --keyring "$ROOT/keyring" > "$LOG/mon-mkfs.out" 2>&1
  launch mon "$LOG/mon.out" ceph-mon -c "$CONF" -i a -f
  ceph -c "$CONF" --connect-timeout 30 osd create >> "$LOG/cli.out" 2>&1   # -> osd.0
  ceph-osd -c "$CONF" -i 0 --mkfs > "$LOG/osd-mkfs.out" 2>&1
  ceph -c "$CONF" --connect-timeout 30 osd crush add osd.0 1 root=default host=localhost >> "$LOG/cli.out" 2>&1
  launch osd "$LOG/osd.out" ceph-osd -c "$CONF" -i 0 -f
  # radosgw creates its pools as it starts; started before the OSD is up, its first writes
  # can stall for an objecter tick (5 s).
  deadline=$(($(date +%s) + START_TIMEOUT))
  until grep -q 'state: booting -> active' "$LOG/osd.0.log" 2>/dev/null; do
    alive "$(cat "$RUN/osd.pid")" ceph-osd || die "ceph-osd exited during start"
    [ "$(date +%s)" -lt "$deadline" ] || die "osd.0 not up after $START_TIMEOUT s"
    sleep 0.1
  done
  launch rgw "$LOG/rgw.out" radosgw -c "$CONF" -n client.rgw.a -f

  code=000
  while :; do
    code=$(http_code "http://127.0.0.1:$PORT/")
    [ "$code" != 200 ] || break
    [ "$(date +%s)" -lt "$deadline" ] || break
    for d in mon:ceph-mon osd:ceph-osd rgw:radosgw; do
      alive "$(cat "$RUN/${d%%:*}.pid")" "${d#*:}" || die "${d#*:} exited during start"
    done
    sleep 0.2
  done
  [ "$code" = 200 ] || die "radosgw not ready after $START_TIMEOUT s (last HTTP status $code)"
  radosgw-admin -c "$CONF" user create --uid=cpvtest --display-name=cpvtest \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" > "$LOG/user-create.out" 2>&1 \
    || die "radosgw-admin user create failed"
  touch "$RUN/ready"
  trap - EXIT
  say "ready at http://127.0.0.1:$PORT in $(since "$t0") s (mon port $mon_port, state $ROOT)"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
