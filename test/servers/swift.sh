#!/usr/bin/env bash
# Single-node OpenStack Swift S3 test server: memcached + account/container/object servers
# + proxy with s3api and tempauth, all on 127.0.0.1, 1 replica, storage in a plain directory.
#
#   swift.sh install   install the Debian packages (root + apt-get; exit 3 when impossible)
#   swift.sh start     write config and rings once, start the servers, wait until ready;
#                      reports ready if already up
#   swift.sh stop      stop the servers and remove the stored data (config and rings stay)
#   swift.sh status    exit 0 and print the endpoint when it answers, exit 1 otherwise
#
# Environment:
#   CPV_SWIFT_ROOT            state directory (default /tmp/cpv-swift-$UID)
#   CPV_SWIFT_PORT            proxy (S3) port on 127.0.0.1 (default 18080)
#   CPV_SWIFT_BACKEND_PORT    object server port; container and account use the next two
#                             (default 16200)
#   CPV_SWIFT_MEMCACHED_PORT  memcached port on 127.0.0.1 (default 21211)
#   CPV_SWIFT_START_TIMEOUT   seconds to wait for the servers (default 60)
#
# S3: endpoint http://127.0.0.1:$CPV_SWIFT_PORT, access key test:tester, secret testing,
# region us-east-1, path-style addressing.
#
# Swift reads its constraints (and hash path settings) only from /etc/swift/swift.conf, so
# start makes sure that file allows 2 KiB metadata values (S3 allows 2 KiB of user metadata;
# Swift's default limit of 256 bytes per value turns longer ones into a 500).
set -eEu
# The command that made start fail, for its last line (set -E: also inside functions).
FAIL_REASON=
trap '[ -n "$FAIL_REASON" ] || FAIL_REASON="failed: $BASH_COMMAND"' ERR

ROOT=${CPV_SWIFT_ROOT:-/tmp/cpv-swift-$(id -u)}
PORT=${CPV_SWIFT_PORT:-18080}
OBJ_PORT=${CPV_SWIFT_BACKEND_PORT:-16200}
CONT_PORT=$((OBJ_PORT + 1))
ACCT_PORT=$((OBJ_PORT + 2))
MC_PORT=${CPV_SWIFT_MEMCACHED_PORT:-21211}
START_TIMEOUT=${CPV_SWIFT_START_TIMEOUT:-60}
ETC=$ROOT/etc
DEV=$ROOT/srv
RUN=$ROOT/run
LOG=$ROOT/log
SWIFT_CONF=/etc/swift/swift.conf
SERVERS="account container object proxy"

SERVER=swift
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# A process counts as alive when it exists, is not a zombie (an init that does not reap
# may leave those behind) and its command line contains the program we started.
alive() { # pid program
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ "$st" != Z ] || return 1
  tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}
program() { # pid-file name -> program name to look for in its command line
  case $1 in memcached) echo memcached ;; *) echo "swift-$1-server" ;; esac
}

# --- install ---------------------------------------------------------------------------
cmd_install() {
  local pkgs="" t0
  for b in swift-proxy-server swift-object-server swift-container-server swift-account-server swift-ring-builder memcached; do
    command -v "$b" >/dev/null 2>&1 || pkgs="swift swift-proxy swift-object swift-container swift-account python3-swift memcached"
  done
  command -v curl >/dev/null 2>&1 || pkgs="$pkgs curl"
  pkgs=$(echo $pkgs)
  if [ -z "$pkgs" ]; then say "already installed ($(dpkg-query -W -f='${Version}' python3-swift 2>/dev/null || echo '?'))"; return 0; fi
  if [ "$(id -u)" != 0 ]; then echo "swift: cannot install $pkgs: not root (run as root or pre-install the Debian packages)" >&2; exit 3; fi
  if ! command -v apt-get >/dev/null 2>&1; then echo "swift: cannot install $pkgs: apt-get not found (Debian 12 swift packages needed)" >&2; exit 3; fi
  t0=$(now)
  apt_install $pkgs
  say "installed $pkgs in $(since "$t0") s"
}

# apt-get update once, then install without recommends and without starting services
# (memcached's package would otherwise start a system-wide memcached).
apt_install() {
  local tmp_policy="" logf rc=0
  logf=$(mktemp)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && tmp_policy=1
  fi
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
  local s
  [ -f "$RUN/ready" ] || return 1
  for s in memcached $SERVERS; do
    alive "$(cat "$RUN/$s.pid" 2>/dev/null || echo 0)" "$(program "$s")" || return 1
  done
  [ "$(http_code "http://127.0.0.1:$(running_port)/healthcheck")" = 200 ]
}

cmd_status() {
  if is_up; then
    say "running: http://127.0.0.1:$(running_port) access key test:tester (state $ROOT)"
  else
    say "not running (state $ROOT)"; return 1
  fi
}

# Swift servers fork their workers; a worker outlives a parent that was killed with
# SIGKILL, so the whole group gets the signal.
stop_daemons() {
  local s groups=""
  [ -d "$RUN" ] || return 0
  for s in proxy object container account memcached; do
    [ -f "$RUN/$s.pid" ] && groups="$groups $(cat "$RUN/$s.pid"):$(program "$s"):TERM"
  done
  # shellcheck disable=SC2086
  stop_groups $groups
  rm -f "$RUN"/*.pid "$RUN/ready"
}

cmd_stop() {
  if [ ! -d "$ROOT" ]; then say "not running"; return 0; fi
  stop_daemons
  rm -rf "$DEV" "$RUN" "$LOG"
  say "stopped"
}

# --- config ----------------------------------------------------------------------------
# /etc/swift/swift.conf: keep whatever hash settings and policies a machine has, add the
# ones that are missing and raise max_meta_value_length to 2048. Written only on change.
ensure_swift_conf() {
  local out rc=0
  out=$("$(command -v /usr/bin/python3 || command -v python3)" - "$SWIFT_CONF" <<'EOPY'
import configparser, os, re, sys
path = sys.argv[1]
text = open(path).read() if os.path.exists(path) else ''
cp = configparser.RawConfigParser()
cp.read_string(text)
add = []
if not (cp.get('swift-hash', 'swift_hash_path_suffix', fallback='') or cp.get('swift-hash', 'swift_hash_path_prefix', fallback='')):
    if cp.has_section('swift-hash'):
        print('[swift-hash] has neither swift_hash_path_suffix nor swift_hash_path_prefix'); sys.exit(1)
    add.append('[swift-hash]\nswift_hash_path_suffix = cpvtest\n')
if not any(s.startswith('storage-policy:') for s in cp.sections()):
    add.append('[storage-policy:0]\nname = Policy-0\ndefault = yes\n')
try:
    cur = int(cp.get('swift-constraints', 'max_meta_value_length', fallback='0'))
except ValueError:
    cur = 0
if cur < 2048:
    if cp.has_section('swift-constraints'):
        # Edit in place (keeping the file's comments): drop the old setting, set ours
        # right under the section header.
        out, section = [], None
        for line in text.splitlines(keepends=True):
            m = re.match(r'\s*\[([^\]]+)\]', line)
            if m:
                section = m.group(1).strip()
            elif section == 'swift-constraints' and re.match(r'\s*max_meta_value_length\s*[=:]', line):
                continue
            out.append(line)
            if m and section == 'swift-constraints':
                out.append('max_meta_value_length = 2048\n')
        text = ''.join(out)
    else:
        add.append('[swift-constraints]\nmax_meta_value_length = 2048\n')
elif not add:
    print('unchanged'); sys.exit(0)
if text and not text.endswith('\n'):
    text += '\n'
text += ''.join('\n' + a for a in add)
try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + '.cpv-tmp', 'w') as f: f.write(text)
    os.chmod(path + '.cpv-tmp', 0o644); os.replace(path + '.cpv-tmp', path)
except OSError as e:
    print('cannot write %s: %s' % (path, e)); sys.exit(4)
print('written')
EOPY
) || rc=$?
  case $rc in
    0) [ "$out" = unchanged ] || say "updated $SWIFT_CONF (max_meta_value_length = 2048)" ;;
    4) [ -f "$SWIFT_CONF" ] || die "$out"
       echo "swift: warning: $out; metadata values over 256 bytes will fail" >&2 ;;
    *) die "cannot check $SWIFT_CONF: $out" ;;
  esac
}

write_backend_conf() { # name port user
  cat > "$ETC/$1-server.conf" <<EOC
[DEFAULT]
devices = $DEV
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
bind_port = $2
workers = 1
user = $3
swift_dir = $ETC
log_level = WARNING
[pipeline:main]
pipeline = $1-server
[app:$1-server]
use = egg:swift#$1
EOC
}

# Config and rings, written once per root and port set (rings hold the backend ports).
ensure_config() {
  local stamp user r n p
  stamp="ports $PORT $OBJ_PORT $CONT_PORT $ACCT_PORT $MC_PORT"
  if [ -f "$ETC/stamp" ] && [ "$(cat "$ETC/stamp")" = "$stamp" ] &&
     [ -s "$ETC/account.ring.gz" ] && [ -s "$ETC/container.ring.gz" ] && [ -s "$ETC/object.ring.gz" ]; then
    return 0
  fi
  user=$(id -un)
  rm -rf "$ETC"; mkdir -p "$ETC"
  write_backend_conf account "$ACCT_PORT" "$user"
  write_backend_conf container "$CONT_PORT" "$user"
  write_backend_conf object "$OBJ_PORT" "$user"
  cat > "$ETC/proxy-server.conf" <<EOC
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 1
user = $user
swift_dir = $ETC
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
# S3 access key "test:tester", secret "testing"
user_test_tester = testing .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOC
  # One Python process builds all three rings (swift-ring-builder would take three runs each).
  "$(command -v /usr/bin/python3 || command -v python3)" - "$ETC" "$ACCT_PORT" "$CONT_PORT" "$OBJ_PORT" <<'EOPY' || die "could not build the rings"
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(('account', 'container', 'object'), map(int, sys.argv[2:5])):
    b = RingBuilder(6, 1, 0)  # 64 partitions, 1 replica
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'replication_ip': '127.0.0.1',
               'replication_port': port, 'device': 'd1', 'weight': 100, 'meta': ''})
    b.rebalance()
    b.save('%s/%s.builder' % (etc, name))
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
EOPY
  for r in account container object; do [ -s "$ETC/$r.ring.gz" ] || die "could not build the $r ring"; done
  echo "$stamp" > "$ETC/stamp"
  say "config and rings written to $ETC"
}

# --- start -----------------------------------------------------------------------------
tail_logs() {
  local f
  for f in "$LOG"/*.log; do
    [ -s "$f" ] || continue
    printf '%s\n' "--- $f (last 20 lines)" >&2
    tail -n 20 "$f" >&2
  done
}



cmd_start() {
  local t0 p s ok deadline
  for b in swift-proxy-server swift-object-server swift-container-server swift-account-server memcached curl python3; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found: run '$0 install' first"
  done
  if is_up; then
    say "already running: ready at http://127.0.0.1:$(running_port)"
    return 0
  fi
  # Leftovers of a crashed or half-started run.
  stop_daemons
  rm -rf "$DEV" "$RUN" "$LOG"
  for p in "$PORT" "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT" "$MC_PORT"; do
    port_busy "$p" && die "port $p on 127.0.0.1 is in use by another program (see CPV_SWIFT_PORT, CPV_SWIFT_BACKEND_PORT, CPV_SWIFT_MEMCACHED_PORT)"
  done

  t0=$(now)
  ensure_swift_conf
  ensure_config
  mkdir -p "$DEV/d1" "$RUN" "$LOG"
  trap start_failed EXIT
  echo "$PORT" > "$RUN/port"
  if [ "$(id -u)" = 0 ]; then
    launch memcached "$LOG/memcached.log" memcached -u root -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64
  else
    launch memcached "$LOG/memcached.log" memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64
  fi
  for s in $SERVERS; do
    launch "$s" "$LOG/$s.log" "swift-$s-server" "$ETC/$s-server.conf" -v
  done

  # Ready when the proxy's /healthcheck says 200 and every backend answers HTTP.
  deadline=$(($(date +%s) + START_TIMEOUT))
  while :; do
    ok=1
    [ "$(http_code "http://127.0.0.1:$PORT/healthcheck")" = 200 ] || ok=0
    for p in "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT"; do
      [ "$ok" = 0 ] || [ "$(http_code "http://127.0.0.1:$p/")" != 000 ] || ok=0
    done
    [ "$ok" = 0 ] || break
    [ "$(date +%s)" -lt "$deadline" ] || break
    for s in memcached $SERVERS; do
      alive "$(cat "$RUN/$s.pid")" "$(program "$s")" || die "$(program "$s") exited during start"
    done
    sleep 0.1
  done
  [ "$ok" = 1 ] || die "not ready after $START_TIMEOUT s"
  touch "$RUN/ready"
  trap - EXIT
  say "ready at http://127.0.0.1:$PORT in $(since "$t0") s (state $ROOT)"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
