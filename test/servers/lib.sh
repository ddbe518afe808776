#!/usr/bin/env bash
# Helpers shared by the test-server scripts (ceph.sh, swift.sh); sourced, not run.
# The sourcing script sets SERVER (its name, for messages) and FAIL_REASON first.

say() { printf '%s: %s\n' "$SERVER" "$*"; }
die() { FAIL_REASON="$*"; printf '%s: %s\n' "$SERVER" "$*" >&2; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }

# --- stop ------------------------------------------------------------------------------
# Every daemon is started as the leader of its own process group (setsid), so a group id
# names the daemon and anything it forked. Group members are read from /proc (no procps).
group_pids() { # pgid [live] -> pids in the group; with "live", zombies left out
  local f st rest state pgrp
  for f in /proc/[0-9]*/stat; do
    { read -r st < "$f"; } 2>/dev/null || continue
    rest=${st##*) }
    read -r state _ pgrp _ <<< "$rest"
    [ "$pgrp" = "$1" ] || continue
    [ "${2:-}" != live ] || [ "$state" != Z ] || continue
    f=${f#/proc/}; echo "${f%/stat}"
  done
}
# True when the group still has a live member running the program we started.
group_alive() { # pgid program
  local q
  for q in $(group_pids "$1" live); do
    tr '\0' ' ' < "/proc/$q/cmdline" 2>/dev/null | grep -q -- "$2" && return 0
  done
  return 1
}
# Signals each group, waits up to 10 s for the groups to exit, then SIGKILLs what is left
# and gives init a moment to reap the orphans, so that nothing (not even a zombie) is
# listed once this returns.
stop_groups() { # "pgid:program:signal" ...
  local g p prog sig i left groups=""
  for g in "$@"; do
    p=${g%%:*}; prog=${g#*:}; sig=${prog##*:}; prog=${prog%:*}
    if group_alive "$p" "$prog"; then
      kill -s "$sig" -- "-$p" 2>/dev/null || true
      groups="$groups $p"
    fi
  done
  [ -n "$groups" ] || return 0
  for i in $(seq 1 100); do
    left=""
    for p in $groups; do [ -z "$(group_pids "$p" live)" ] || left="$left $p"; done
    [ -n "$left" ] || break
    sleep 0.1
  done
  for p in $left; do say "process group $p still alive after 10 s, SIGKILL"; kill -KILL -- "-$p" 2>/dev/null || true; done
  for i in $(seq 1 50); do
    left=""
    for p in $groups; do [ -z "$(group_pids "$p")" ] || left=1; done
    [ -n "$left" ] || break
    sleep 0.1
  done
}


# On a failed start: show the logs, stop what did start, and end with one line naming
# the cause. Expects SERVER (ceph|swift), LOG, FAIL_REASON and the script's tail_logs and
# stop_daemons. Used as an EXIT trap.
start_failed() {
  local rc=$?
  [ "$rc" != 0 ] || return 0
  tail_logs
  stop_daemons
  echo "$SERVER: start failed: ${FAIL_REASON:-exit status $rc} (logs in $LOG)" >&2
  exit "$rc"
}

# Launch a daemon in its own session, detached from our stdio, and record its pid.
launch() { # name logfile command...
  local name=$1 out=$2; shift 2
  setsid "$@" < /dev/null > "$out" 2>&1 &
  echo $! > "$RUN/$name.pid"
  disown $!
}
