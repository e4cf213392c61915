#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions run from traps and wait_for look unreachable to shellcheck
# A real multi-host sweep on one machine, with faults injected while it runs.
#
#   sudo cluster/netns/run.sh [--binary PATH] [--workdir DIR] [--keep] [--limit SECONDS]
#
# Builds its own network: one network namespace per host (coordinator, workers w1..w4, a rogue host)
# plus one namespace holding the bridge, each host joined to the bridge by a veth pair, addresses in
# 10.77.0.0/24. Nothing of it lives in the root namespace, no traffic leaves these namespaces, and it
# is all torn down on exit (trap), also after a previous run that was killed (by name prefix rsnt-).
#
# The sweep (a small real train + compress grid and a budget: sensitivity jobs, an allocation and its
# compress jobs per seed; sleep jobs keep the workers busy) runs with
# CurveZMQ and a ZAP allowlist, while these faults are injected:
#   1. SIGKILL a worker in the middle of a (real) job       -> the job finishes on another worker
#   2. cut a worker's link (ip link set down) for longer than the heartbeat limit, then restore it
#                                                            -> its job is requeued; its late result is dropped
#   3. tc netem 50 ms delay + 5% loss on one worker's link  -> the sweep still completes
#      (when the kernel has no sch_netem: 5% loss with nftables instead, and the output says so)
#   4. SIGKILL the coordinator mid-sweep, restart it on the same state dir -> workers reattach, it completes
#   5. a host with a key that is not in the allowlist tries to join -> refused, logged
# Then it checks that every job has exactly one result, that the train/compress/budget results equal those
# of an undisturbed run of the same sweep (run meanwhile on loopback inside its own namespace), prints
# one summary line (starting "netns summary:") and exits 0 only if everything held.
# Exit codes: 0 all held, 1 a check failed, 2 setup impossible (not root, no ip/python3), 124 time limit.
set -euo pipefail

PREFIX=rsnt
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
BIN="$ROOT/.build/release/ranksweep"
WORK=""
KEEP=0
LIMIT=210          # seconds for the whole script; it stops by itself
PORT=5555
COORD_IP=10.77.0.1
WORKERS=(w1 w2 w3 w4)
declare -A IP=([coord]=10.77.0.1 [w1]=10.77.0.11 [w2]=10.77.0.12 [w3]=10.77.0.13 [w4]=10.77.0.14 [rogue]=10.77.0.66)

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) BIN=$2; shift 2 ;;
        --workdir) WORK=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --limit) LIMIT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

START=$(date +%s)
log() { printf '[netns %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
die() { log "SETUP ERROR: $*"; exit 2; }
fail() { log "CHECK FAILED: $*"; FAILURES+=("$*"); }
FAILURES=()

[[ $(id -u) -eq 0 ]] || die "must run as root (it creates network namespaces); try: sudo $0"
command -v ip >/dev/null || die "ip (iproute2) not found"
command -v python3 >/dev/null || die "python3 not found (used to read sweep.sqlite)"
[[ -x $BIN ]] || die "ranksweep binary $BIN not found or not executable (build it: swift build -c release, or give --binary)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# ---------------------------------------------------------------- network: teardown and setup
PIDS=()
WATCHDOG=""
kill_ns_procs() {  # every process inside one of our namespaces (only ours live there)
    local ns pids
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086
        if [[ -n $pids ]]; then kill -9 $pids 2>/dev/null || true; fi
    done
}
teardown() {
    local ns
    kill_ns_procs
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-" || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $WATCHDOG ]]; then kill "$WATCHDOG" 2>/dev/null || true; fi
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    teardown
    if [[ $rc -eq 0 && $KEEP -eq 0 && -n $WORK && $WORK == */rsnt.* ]]; then rm -rf "$WORK"
    elif [[ -n $WORK ]]; then log "logs and state kept in $WORK"; fi
    exit "$rc"
}
on_signal() { log "stopped by signal or time limit (${LIMIT}s)"; exit 124; }
trap cleanup EXIT
trap on_signal INT TERM

teardown  # leftovers of an aborted run
( exec >/dev/null 2>&1; sleep "$LIMIT" & s=$!; trap 'kill $s; exit 0' TERM; wait $s; kill -TERM $$ ) &
WATCHDOG=$!

if [[ -z $WORK ]]; then WORK=$(mktemp -d /tmp/rsnt.XXXXXX)
elif [[ -e $WORK && -n $(ls -A "$WORK" 2>/dev/null) ]]; then WORK_GIVEN=$WORK; WORK=""; die "work dir $WORK_GIVEN is not empty"
fi
mkdir -p "$WORK"
log "work dir $WORK, binary $BIN"

ns() { echo "$PREFIX-$1"; }
ip netns add "$(ns br)"
ip -n "$(ns br)" link add br0 type bridge
ip -n "$(ns br)" link set br0 up
ip -n "$(ns br)" link set lo up
for h in coord "${WORKERS[@]}" rogue; do
    ip netns add "$(ns "$h")"
    # both ends are created directly inside their namespaces: nothing appears in the root namespace
    ip link add eth0 netns "$(ns "$h")" type veth peer name "v-$h" netns "$(ns br)"
    ip -n "$(ns br)" link set "v-$h" master br0
    ip -n "$(ns br)" link set "v-$h" up
    ip -n "$(ns "$h")" addr add "${IP[$h]}/24" dev eth0
    ip -n "$(ns "$h")" link set eth0 up
    ip -n "$(ns "$h")" link set lo up
done
ip netns add "$(ns ref)"          # the undisturbed reference run: loopback only
ip -n "$(ns ref)" link set lo up
for h in "${WORKERS[@]}" rogue; do  # every host reaches the coordinator over the bridge
    ok=0
    for _ in $(seq 50); do
        out=$(ip netns exec "$(ns "$h")" bash -c "exec 3<>/dev/tcp/$COORD_IP/9" 2>&1 || true)
        if [[ $out == *refused* ]]; then ok=1; break; fi  # an answer (RST) from the coordinator's host
        sleep 0.1
    done
    [[ $ok -eq 1 ]] || die "host $h cannot reach $COORD_IP over the bridge"
done
log "network up: bridge in $(ns br); coord ${IP[coord]}, ${WORKERS[*]} .11-.14, rogue ${IP[rogue]}"

# ---------------------------------------------------------------- keys, sweep file
export RANKSWEEP_HEARTBEAT_MS=200 RANKSWEEP_LIVENESS=5 RANKSWEEP_RECONNECT_MAX_MS=1000
DEAD_AFTER=1   # seconds: 200 ms x 5 (a peer silent that long is dead)
K=$WORK/coordinator-host/keys
mkdir -p "$K/workers"
"$BIN" keygen --out "$K" --name coordinator >/dev/null
for h in "${WORKERS[@]}" rogue; do
    d=$WORK/$h-host
    mkdir -p "$d"
    "$BIN" keygen --out "$d" --name "$h" >/dev/null
    cp "$K/coordinator.pub" "$d/coordinator.pub"            # each host gets the coordinator's public key
    [[ $h == rogue ]] || cp "$d/$h.pub" "$K/workers/$h.pub"  # the allowlist: every worker but the rogue
done

SWEEP=$WORK/sweep.yaml
cat >"$SWEEP" <<'EOF'
synthetic: {count: 24, size: 32, seed: 3}
image_size: 32
model: {base_filters: 4, depth: 2, channels: 3}
baseline: {epochs: 6, batch_size: 4, lr: 0.003, patience: 5, lr_patience: 3, augment: true}
compression: {svd_ranks: [2, 4], arsvd_taus: [0.9]}   # results are compared across runs
budget: {params: [0.5], methods: [svd], candidates: 2}  # sensitivity jobs, an allocation, two compress jobs per seed
fine_tune: {epochs: 3, lr: 0.0001}
seeds: [1, 2, 3, 4]
max_attempts: 4
sleep: {count: 32, seconds: 2}
EOF

STATE=$WORK/coordinator-host/state
DB=$STATE/sweep.sqlite
# q SQL -> rows, tab-separated (read-only; the coordinator is the only writer)
q() {
    python3 - "$DB" "$1" <<'PY' 2>/dev/null || true
import sqlite3, sys
try:
    c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=5)
    for r in c.execute(sys.argv[2]):
        print("\t".join("" if v is None else str(v) for v in r))
except sqlite3.Error:
    pass
PY
}
q1() { q "$1" | head -n1; }
# wait_for SECONDS DESCRIPTION COMMAND... : polls until COMMAND succeeds
wait_for() {
    local secs=$1 what=$2; shift 2
    local end=$(( $(date +%s) + secs ))
    while (( $(date +%s) < end )); do "$@" && return 0; sleep 0.1; done
    fail "timed out after ${secs}s waiting for: $what"
    return 1
}

start_coordinator() {  # $1: log tag
    ip netns exec "$(ns coord)" "$BIN" coordinator --sweep "$SWEEP" --bind "tcp://$COORD_IP:$PORT" \
        --state-dir "$STATE" --keys "$K" --progress plain >"$WORK/coordinator$1.log" 2>&1 &
    COORD_PID=$!
    PIDS+=("$COORD_PID")
    wait_for 20 "coordinator listening" grep -q "listening on" "$WORK/coordinator$1.log"
}
declare -A WPID
start_worker() {  # $1: host; $2: log tag
    local h=$1 d=$WORK/$1-host
    ip netns exec "$(ns "$h")" "$BIN" worker --connect "tcp://$COORD_IP:$PORT" --name "$h" \
        --key "$d/$h.key" --server-key "$d/coordinator.pub" --threads 1 --cache-dir "$d/cache" \
        >"$WORK/worker-$h$2.log" 2>&1 &
    WPID[$h]=$!
    PIDS+=("$!")
}
# open attempt on a worker whose id starts with $1-: prints "job<TAB>attempt<TAB>worker<TAB>kind"
open_attempt() {
    q "SELECT a.job, a.attempt, a.worker, j.kind FROM attempts a JOIN jobs j ON j.id = a.job
       WHERE a.outcome IS NULL AND a.worker LIKE '$1-%' $2 ORDER BY a.started DESC LIMIT 1"
}

# ---------------------------------------------------------------- the undisturbed reference run
REF=$WORK/reference
ip netns exec "$(ns ref)" "$BIN" run "$SWEEP" --local-workers 4 --threads 1 --state-dir "$REF" --progress plain \
    >"$WORK/reference.log" 2>&1 &
REF_PID=$!
PIDS+=("$REF_PID")

# ---------------------------------------------------------------- the sweep under faults
NETEM="not run"
start_coordinator ""
log "coordinator up on tcp://$COORD_IP:$PORT (CURVE, allowlist of ${#WORKERS[@]} keys)"

# fault 3 first, so the whole sweep on w3 goes through it: delay + loss on w3's link, both directions
if ip -n "$(ns w3)" link >/dev/null && ip netns exec "$(ns w3)" tc qdisc add dev eth0 root netem delay 50ms loss 5% 2>"$WORK/netem.err"; then
    ip netns exec "$(ns br)" tc qdisc add dev v-w3 root netem delay 50ms loss 5%
    NETEM="netem"
    log "fault 3: tc netem delay 50ms loss 5% on w3's link (both directions)"
else
    log "NETEM UNAVAILABLE: 'tc qdisc add ... netem' failed: $(tr '\n' ' ' <"$WORK/netem.err")(no sch_netem in this kernel?)."
    if ! command -v nft >/dev/null && command -v apt-get >/dev/null; then
        log "installing nftables for the loss-only substitute"
        DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y -q nftables >"$WORK/apt.log" 2>&1 || true
    fi
    if command -v nft >/dev/null && ip netns exec "$(ns w3)" nft -f - <<'EOF'
table inet rsloss {
  chain in {
    type filter hook input priority 0; policy accept;
    numgen random mod 100 < 5 counter drop
  }
  chain out {
    type filter hook output priority 0; policy accept;
    numgen random mod 100 < 5 counter drop
  }
}
EOF
    then
        NETEM="substitute"
        log "fault 3 SUBSTITUTE: 5% random loss both ways on w3 with nftables (numgen); NO 50 ms delay (needs sch_netem)"
    else
        NETEM="unavailable"
        log "fault 3 NOT INJECTED: neither sch_netem nor nftables available"
    fi
fi

for h in "${WORKERS[@]}"; do start_worker "$h" ""; done
log "workers ${WORKERS[*]} started (--threads 1 each)"

# fault 5 (checked below): a host whose key is not in the allowlist tries to join from the start
ROGUE_PUB=$(tr -d '\n' <"$WORK/rogue-host/rogue.pub")
start_worker rogue ""

# fault 1: SIGKILL w1 in the middle of a real job (its baseline training), early in the sweep.
# A job can finish in the instant between choosing it and the kill landing; then the kill hit an
# idle worker and proved nothing, so the fault is injected again on the restarted host.
R1=0
KILLED=""
for try in 1 2 3; do
    CHOSEN=""
    end=$(( $(date +%s) + 20 ))
    while (( $(date +%s) < end )); do
        CHOSEN=$(open_attempt w1 "AND j.kind IN ('train', 'compress')")
        [[ -n $CHOSEN ]] && break
        # no real job on w1 after 10 s: any job that started less than 0.5 s ago will do
        if (( $(date +%s) > end - 10 )); then
            CHOSEN=$(open_attempt w1 "AND a.started > strftime('%s', 'now') - 0.5")
            [[ -n $CHOSEN ]] && break
        fi
        sleep 0.05
    done
    [[ -n $CHOSEN ]] || break
    KILLED=$CHOSEN
    IFS=$'\t' read -r K1_JOB K1_ATT K1_WORKER K1_KIND <<<"$KILLED"
    kill -9 "${WPID[w1]}"
    log "fault 1: SIGKILL worker w1 ($K1_WORKER) while it ran $K1_KIND job $K1_JOB attempt $K1_ATT"
    sleep 1.5
    start_worker w1 "-$((try + 1))"   # host w1 comes back (a new worker process, a new worker id)
    [[ $(q1 "SELECT outcome FROM attempts WHERE job = '$K1_JOB' AND attempt = $K1_ATT") == done ]] || break
    log "fault 1: $K1_JOB finished just before the kill landed; injecting again"
done
[[ -n $KILLED ]] || fail "w1 never ran a job"

R5=0
if wait_for 15 "rogue key refused in coordinator log" grep -qF "refused worker key $ROGUE_PUB" "$WORK/coordinator.log"; then
    if [[ $(q1 "SELECT COUNT(*) FROM workers WHERE id LIKE 'rogue-%'") == 0 && \
          $(q1 "SELECT COUNT(*) FROM attempts WHERE worker LIKE 'rogue-%'") == 0 ]] && \
       grep -q "no WELCOME" "$WORK/worker-rogue.log" && ! grep -q "welcomed" "$WORK/worker-rogue.log"; then
        R5=1
        log "fault 5: rogue host ${IP[rogue]} refused and logged: $(grep -m1 -F "refused worker key" "$WORK/coordinator.log" | cut -c1-160)"
    else
        fail "rogue host got in (worker row, attempt, or a WELCOME)"
    fi
fi
kill -9 "${WPID[rogue]}" 2>/dev/null || true

# fault 2: cut w2's link (bridge port down) while it runs a sleep job, longer than the heartbeat limit
R2=0
CUT=""
end=$(( $(date +%s) + 40 ))
while (( $(date +%s) < end )); do
    CUT=$(open_attempt w2 "AND j.kind = 'sleep' AND a.started > strftime('%s', 'now') - 0.5")
    [[ -n $CUT ]] && break
    sleep 0.05
done
if [[ -n $CUT ]]; then
    IFS=$'\t' read -r K2_JOB K2_ATT K2_WORKER _ <<<"$CUT"
    ip -n "$(ns br)" link set v-w2 down
    log "fault 2: link of w2 down (ip link set v-w2 down) while it ran $K2_JOB attempt $K2_ATT"
    sleep 3.5   # > heartbeat limit (DEAD_AFTER) and > the job's 2 s: w2 finishes it while cut off
    DEAD2=$(q1 "SELECT outcome FROM attempts WHERE job = '$K2_JOB' AND attempt = $K2_ATT")
    ip -n "$(ns br)" link set v-w2 up
    log "fault 2: link of w2 up again after 3.5 s (heartbeat limit ${DEAD_AFTER} s; its attempt is now: ${DEAD2:-?})"
else
    fail "w2 never started a sleep job to cut"
fi

# fault 4: SIGKILL the coordinator in the middle of a budget's sensitivity phase (some of its jobs
# done, some running), else while compress jobs run; restart it on the same state dir
R4=0
sensitivity_midway() {
    [[ $(q1 "SELECT COUNT(*) FROM jobs WHERE kind = 'sensitivity' AND state = 'running'") -ge 1 && \
       $(q1 "SELECT COUNT(*) FROM results r JOIN jobs j ON j.id = r.job WHERE j.kind = 'sensitivity'") -ge 1 ]]
}
compress_running() { [[ $(q1 "SELECT COUNT(*) FROM jobs WHERE kind IN ('compress', 'sensitivity') AND state = 'running'") -ge 2 ]]; }
K4_PHASE=compress
if wait_for 60 "sensitivity jobs midway" sensitivity_midway; then K4_PHASE=sensitivity
else wait_for 30 "compress jobs running" compress_running || true; fi
sleep 0.3
BEFORE=$(q "SELECT job, attempt, worker, finished FROM results ORDER BY job")
RUNNING_BEFORE=$(q "SELECT id FROM jobs WHERE state = 'running' ORDER BY id" | tr '\n' ' ')
kill -9 "$COORD_PID"
wait "$COORD_PID" 2>/dev/null || true
log "fault 4: SIGKILL coordinator with $(grep -c . <<<"$BEFORE") results recorded, running: $RUNNING_BEFORE"
sleep 1
RESTART_AT=$(date +%Y-%m-%dT%H:%M:%S)
start_coordinator "-2"
log "coordinator restarted on the same state dir"

# ---------------------------------------------------------------- the end of the sweep
COORD_RC=0
end=$(( $(date +%s) + 120 ))
while kill -0 "$COORD_PID" 2>/dev/null && (( $(date +%s) < end )); do sleep 0.2; done
if kill -0 "$COORD_PID" 2>/dev/null; then
    fail "sweep did not complete within 120 s of the last fault (processes: $WORK/stuck-ps.txt)"
    for n in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-"); do
        for p in $(ip netns pids "$n"); do echo "$n $(ps -o pid=,ppid=,stat=,etime=,wchan:24=,args= -p "$p" | cut -c1-220)"; done
    done >"$WORK/stuck-ps.txt" 2>&1
    q "SELECT id, state, attempt, worker FROM jobs WHERE state != 'done'" >>"$WORK/stuck-ps.txt"
    kill -9 "$COORD_PID"
fi
wait "$COORD_PID" || COORD_RC=$?
[[ $COORD_RC -eq 0 ]] || fail "restarted coordinator exited $COORD_RC"
grep -q "sweep complete" "$WORK/coordinator-2.log" || fail "no 'sweep complete' in the restarted coordinator's log"
log "sweep under faults finished: $(grep -m1 "sweep complete" "$WORK/coordinator-2.log" || echo '?')"

# fault 3 was real: packets were dropped on w3's link
DROPS=0
case $NETEM in
    netem) DROPS=$({ ip netns exec "$(ns w3)" tc -s qdisc show dev eth0; ip netns exec "$(ns br)" tc -s qdisc show dev v-w3; } |
                   grep -o 'dropped [0-9]*' | awk '{s += $2} END {print s + 0}') ;;
    substitute) DROPS=$(ip netns exec "$(ns w3)" nft list table inet rsloss | grep -o 'packets [0-9]*' | awk '{s += $2} END {print s + 0}') ;;
esac
[[ $NETEM == netem || $NETEM == substitute ]] && log "fault 3: $DROPS of w3's packets dropped by the $NETEM rules during the sweep"

# checks of faults 1, 2, 4
TOTAL=$(q1 "SELECT COUNT(*) FROM jobs")
if [[ -n $KILLED ]]; then
    r=$(q1 "SELECT worker FROM results WHERE job = '$K1_JOB'")
    o=$(q1 "SELECT outcome FROM attempts WHERE job = '$K1_JOB' AND attempt = $K1_ATT")
    if [[ -n $r && $r != "$K1_WORKER" && ( $o == dead || $o == orphaned || $o == lost ) ]]; then
        R1=1; log "fault 1 survived: $K1_JOB finished on $r (killed attempt: $o)"
    else fail "fault 1: $K1_JOB result from '${r:-none}', killed attempt outcome '${o:-open}'"; fi
fi
if [[ -n $CUT ]]; then
    r=$(q "SELECT worker, attempt FROM results WHERE job = '$K2_JOB'")
    o=$(q1 "SELECT outcome FROM attempts WHERE job = '$K2_JOB' AND attempt = $K2_ATT")
    n=$(q1 "SELECT COUNT(*) FROM events WHERE kind = 'done' AND job = '$K2_JOB'")
    late=$(q1 "SELECT COUNT(*) FROM events WHERE job = '$K2_JOB' AND attempt = $K2_ATT AND worker = '$K2_WORKER'
               AND kind IN ('duplicate-done', 'stale-attempt')")
    # The accepted result is a later attempt (on any worker, w2 included once it is back).
    if [[ $o == dead && $n == 1 && -n $r && ${r##*$'\t'} != "$K2_ATT" && $late -ge 1 ]]; then
        R2=1; log "fault 2 survived: $K2_JOB requeued, finished once (attempt ${r##*$'\t'} on ${r%%$'\t'*}); w2's late result for attempt $K2_ATT dropped ($late event(s))"
    else
        fail "fault 2: attempt outcome '${o:-?}', $n accepted result(s) from '${r:-none}', late-result events $late"
    fi
fi
reattached=$(grep -c "reattached" "$WORK/coordinator-2.log" || true)
rejoined=$(grep -c "joined" "$WORK/coordinator-2.log" || true)
if grep -q "resuming" "$WORK/coordinator-2.log" && [[ $COORD_RC -eq 0 ]]; then
    AFTER=$(q "SELECT job, attempt, worker, finished FROM results ORDER BY job")
    lost=$(grep -cvxFf <(printf '%s\n' "$AFTER") <<<"$BEFORE" || true)
    if [[ -n ${RUNNING_BEFORE// /} && $reattached -lt 1 ]]; then
        fail "fault 4: jobs were running at the kill ($RUNNING_BEFORE) but none was reattached"
    fi
    # Every worker must come back, or at least be trying: when the rest of the sweep is short, it can
    # end before a worker on the lossy link (fault 3) gets its HELLO through.
    retrying=0; absent=""
    for h in "${WORKERS[@]}"; do
        grep -q "worker $h-[^ ]* joined" "$WORK/coordinator-2.log" && continue
        tries=$(awk -v t="$RESTART_AT" 'substr($1, 1, 19) >= t && /no WELCOME/' "$WORK"/worker-"$h"*.log | wc -l)
        if (( tries > 0 )); then retrying=$((retrying + 1)); else absent+=" $h"; fi
    done
    if [[ -n ${RUNNING_BEFORE// /} && $reattached -lt 1 ]]; then
        :
    elif [[ -n $absent ]]; then
        fail "fault 4: only $rejoined of ${#WORKERS[@]} workers came back to the restarted coordinator (not even retrying:$absent)"
    elif [[ $lost -eq 0 ]]; then
        still=""; (( retrying == 0 )) || still=" and $retrying still retrying when the sweep ended"
        R4=1; log "fault 4 survived: resumed, $rejoined worker (re)join(s)$still, $reattached job(s) reattached, every earlier result unchanged"
    else fail "fault 4: $lost result(s) recorded before the kill changed or vanished"; fi
else
    fail "fault 4: restarted coordinator did not resume and complete"
fi

# every job exactly one result
NRES=$(q1 "SELECT COUNT(*) FROM results")
NDONE=$(q1 "SELECT COUNT(*) FROM jobs WHERE state = 'done'")
MULTI=$(q1 "SELECT COUNT(*) FROM (SELECT job FROM events WHERE kind = 'done' GROUP BY job HAVING COUNT(*) > 1)")
NDUP=$(q1 "SELECT COUNT(*) FROM events WHERE kind IN ('duplicate-done', 'stale-attempt')")
EXACT=0
if [[ $NRES == "$TOTAL" && $NDONE == "$TOTAL" && $MULTI == 0 && $TOTAL -gt 0 ]]; then EXACT=1
else fail "results $NRES, done $NDONE, jobs $TOTAL, jobs accepted twice $MULTI"; fi

# the undisturbed run, and the comparison of train/compress results
end=$(( $(date +%s) + 60 ))
while kill -0 "$REF_PID" 2>/dev/null && (( $(date +%s) < end )); do sleep 0.2; done
REF_RC=0
if kill -0 "$REF_PID" 2>/dev/null; then kill -9 "$REF_PID"; REF_RC=124; fi
wait "$REF_PID" 2>/dev/null || REF_RC=$?
[[ $REF_RC -eq 0 ]] || fail "the undisturbed reference run exited $REF_RC (see $WORK/reference.log)"
SAME=0
CMP=$(python3 - "$DB" "$REF/sweep.sqlite" <<'PY'
import json, sqlite3, sys
# Timings (seconds, latency, speed-up, dates) differ between runs; every other number must be equal.
SKIP = ("second", "time", "latency", "speedup", "speed_up", "ms", "elapsed", "date", "started", "finished", "throughput")
def flat(o, p=""):
    if isinstance(o, dict):
        for k, v in o.items():
            yield from flat(v, p + "." + k if p else k)
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from flat(v, f"{p}[{i}]")
    elif isinstance(o, (int, float)) and not isinstance(o, bool):
        leaf = p.rsplit(".", 1)[-1].lower()
        if not any(s in leaf for s in SKIP):
            yield p, o
def load(path):
    c = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
    rows = c.execute("SELECT r.job, r.result FROM results r JOIN jobs j ON j.id = r.job WHERE j.kind IN ('train', 'compress', 'sensitivity', 'allocate')")
    return {job: dict(flat(json.loads(res))) for job, res in rows}
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = []
if set(a) != set(b):
    bad.append(f"job sets differ: {sorted(set(a) ^ set(b))}")
n = 0
for job in sorted(set(a) & set(b)):
    if set(a[job]) != set(b[job]):
        bad.append(f"{job}: fields differ {sorted(set(a[job]) ^ set(b[job]))[:5]}")
    for k in sorted(set(a[job]) & set(b[job])):
        n += 1
        if a[job][k] != b[job][k]:
            bad.append(f"{job}.{k}: {a[job][k]} != {b[job][k]}")
dice = [v for j in sorted(a) for k, v in a[j].items() if k.lower().endswith("dice")][:1]
print(f"{len(a)} jobs {n} values" + (f" e.g. {dice[0]:.6f}" if dice else ""))
for line in bad[:10]:
    print("DIFF " + line)
sys.exit(1 if bad or not a else 0)
PY
) || true
[[ $CMP == *" values"* && $CMP != *DIFF* ]] && SAME=1
if [[ $SAME -eq 1 ]]; then log "results equal the undisturbed run: $CMP"
else fail "results differ from the undisturbed run: $CMP"; fi

# ---------------------------------------------------------------- summary
R3=0
case $NETEM in
    netem|substitute) [[ $COORD_RC -eq 0 && $DROPS -gt 0 ]] && R3=1 ;;
esac
label3="netem-50ms-5%loss($DROPS-dropped)"
[[ $NETEM == substitute ]] && label3="loss-5%-nftables(NO-NETEM,no-delay,$DROPS-dropped)"
[[ $NETEM == unavailable ]] && label3="netem-UNAVAILABLE"
INJ=0; SURV=0
for f in "worker-kill:$R1:${KILLED:+1}" "link-down:$R2:${CUT:+1}" "$label3:$R3:$([[ $NETEM == netem || $NETEM == substitute ]] && echo 1)" \
         "coordinator-kill:$R4:1" "wrong-key:$R5:1"; do
    IFS=: read -r _ ok inj <<<"$f"
    [[ $inj == 1 ]] && INJ=$((INJ + 1))
    [[ $ok == 1 ]] && SURV=$((SURV + 1))
done
st() { [[ $1 == 1 ]] && echo ok || echo FAILED; }
ELAPSED=$(( $(date +%s) - START ))
NSENS=$(q1 "SELECT COUNT(*) FROM results r JOIN jobs j ON j.id = r.job WHERE j.kind = 'sensitivity'")
NALLOC=$(q1 "SELECT COUNT(*) FROM results r JOIN jobs j ON j.id = r.job WHERE j.kind = 'allocate'")
SUMMARY="netns summary: faults injected $INJ/5, survived $SURV/5 [worker-kill $(st $R1), link-down $(st $R2), $label3 $(st $R3), coordinator-kill $(st $R4), wrong-key $(st $R5)]; jobs $NRES/$TOTAL exactly once ($NDUP late/duplicate dropped); results equal undisturbed run: $([[ $SAME == 1 ]] && echo yes || echo NO); budget: $NSENS sensitivity and $NALLOC allocation jobs done, coordinator killed during the $K4_PHASE phase; ${ELAPSED}s"
echo "$SUMMARY"
if [[ ${#FAILURES[@]} -eq 0 && $SURV -eq 5 && $EXACT -eq 1 && $SAME -eq 1 ]]; then
    exit 0
fi
for f in "${FAILURES[@]}"; do log "failed: $f"; done
exit 1
