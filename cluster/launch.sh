#!/usr/bin/env bash
# Start, watch and stop a ranksweep sweep on several hosts over ssh.
#
#   cluster/launch.sh [--hosts FILE] [--dry-run] start|status|logs|stop
#
#   start   makes missing keys (coordinator pair, one pair per worker host, the allowlist), starts the
#           coordinator here in the background, copies each worker its key pair and the coordinator's
#           public key, and starts `ranksweep worker` there in the background (nohup)
#   status  `ranksweep status` of the state dir, whether each process is alive, logs gathered back
#   logs    gathers every worker's log into LOG_DIR
#   stop    SIGTERM to the workers (they hand their jobs back) and to the coordinator, logs gathered
#
# --hosts FILE (default cluster/hosts, see cluster/hosts.example); --dry-run prints every command
# (ssh, scp, keygen, the coordinator) instead of running it, and changes nothing.
set -euo pipefail

HOSTS_FILE=""
DRY=0
VERB=""
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --hosts) HOSTS_FILE=$2; shift 2 ;;
        --hosts=*) HOSTS_FILE=${1#--hosts=}; shift ;;
        --dry-run|-n) DRY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        start|stop|status|logs) VERB=$1; shift ;;
        *) echo "launch.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[[ -n $VERB ]] || { echo "launch.sh: give a verb: start, status, logs or stop" >&2; usage >&2; exit 2; }
[[ -n $HOSTS_FILE ]] || HOSTS_FILE="$(dirname "$0")/hosts"
[[ -r $HOSTS_FILE ]] || { echo "launch.sh: hosts file $HOSTS_FILE cannot be read (start from cluster/hosts.example)" >&2; exit 2; }

# ---------------------------------------------------------------- the hosts file
COORDINATOR_ENDPOINT="" BIND=tcp://0.0.0.0:5555 SWEEP="" STATE_DIR="" KEYS=cluster-keys LOG_DIR=ranksweep-logs
BIN=ranksweep REMOTE_DIR=.ranksweep SSH_OPTS="-o BatchMode=yes -o ConnectTimeout=10"
W_TARGET=() W_NAME=() W_SLOTS=() W_THREADS=() W_BIN=() W_CORETYPE=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line ]] && continue
    if [[ $line =~ ^([A-Z_]+)=(.*)$ ]]; then
        key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
        case $key in
            COORDINATOR_ENDPOINT|BIND|SWEEP|STATE_DIR|KEYS|LOG_DIR|BIN|REMOTE_DIR|SSH_OPTS) printf -v "$key" '%s' "$value" ;;
            *) echo "launch.sh: $HOSTS_FILE:$lineno: unknown setting $key" >&2; exit 2 ;;
        esac
        continue
    fi
    read -r -a f <<<"$line"
    if [[ ${f[0]} != worker || ${#f[@]} -lt 2 ]]; then
        echo "launch.sh: $HOSTS_FILE:$lineno: expected KEY=VALUE or 'worker SSH_TARGET [options]'" >&2; exit 2
    fi
    target=${f[1]} host=${f[1]#*@}
    name=${host%%.*} slots=1 threads="" wbin=ranksweep coretype=""
    for opt in "${f[@]:2}"; do
        case $opt in
            name=*) name=${opt#name=} ;;
            slots=*) slots=${opt#slots=} ;;
            threads=*) threads=${opt#threads=} ;;
            bin=*) wbin=${opt#bin=} ;;
            coretype=*) coretype=${opt#coretype=} ;;
            *) echo "launch.sh: $HOSTS_FILE:$lineno: unknown worker option $opt" >&2; exit 2 ;;
        esac
    done
    [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || { echo "launch.sh: $HOSTS_FILE:$lineno: name '$name' must be letters, digits, - or _" >&2; exit 2; }
    [[ $slots =~ ^[1-9][0-9]*$ ]] || { echo "launch.sh: $HOSTS_FILE:$lineno: slots must be a positive integer" >&2; exit 2; }
    [[ -z $threads || $threads =~ ^[1-9][0-9]*$ ]] || { echo "launch.sh: $HOSTS_FILE:$lineno: threads must be a positive integer" >&2; exit 2; }
    for n in "${W_NAME[@]}"; do [[ $n != "$name" ]] || { echo "launch.sh: $HOSTS_FILE:$lineno: worker name $name used twice (give name=)" >&2; exit 2; }; done
    W_TARGET+=("$target") W_NAME+=("$name") W_SLOTS+=("$slots") W_THREADS+=("$threads") W_BIN+=("$wbin") W_CORETYPE+=("$coretype")
done <"$HOSTS_FILE"

[[ ${#W_NAME[@]} -gt 0 ]] || { echo "launch.sh: $HOSTS_FILE lists no worker host" >&2; exit 2; }
[[ -n $COORDINATOR_ENDPOINT ]] || { echo "launch.sh: $HOSTS_FILE: COORDINATOR_ENDPOINT is required" >&2; exit 2; }
[[ -n $STATE_DIR ]] || { echo "launch.sh: $HOSTS_FILE: STATE_DIR is required" >&2; exit 2; }
read -r -a SSH_ARGS <<<"$SSH_OPTS"

# ---------------------------------------------------------------- running (or printing) commands
say() { echo "launch.sh: $*"; }
show() { local s; printf -v s '%q ' "$@"; echo "+ ${s% }"; }
run() { if [[ $DRY -eq 1 ]]; then show "$@"; else "$@"; fi; }
# remote TARGET SCRIPT: runs a shell script on a worker host
remote() { run ssh "${SSH_ARGS[@]}" "$1" "$2"; }
q() { printf '%q' "$1"; }
coordinator_running() { [[ -f $LOG_DIR/coordinator.pid ]] && kill -0 "$(cat "$LOG_DIR/coordinator.pid")" 2>/dev/null; }

ensure_keys() {
    local i
    if [[ ! -f $KEYS/coordinator.key ]]; then run "$BIN" keygen --out "$KEYS" --name coordinator; fi
    run mkdir -p "$KEYS/workers" "$KEYS/hosts"
    for i in "${!W_NAME[@]}"; do
        local n=${W_NAME[$i]}
        if [[ ! -f $KEYS/hosts/$n.key ]]; then run "$BIN" keygen --out "$KEYS/hosts" --name "$n"; fi
        if [[ ! -f $KEYS/workers/$n.pub ]]; then run cp "$KEYS/hosts/$n.pub" "$KEYS/workers/$n.pub"; fi
    done
}

start_coordinator() {
    if [[ $DRY -eq 0 ]] && coordinator_running; then
        say "coordinator already running (pid $(cat "$LOG_DIR/coordinator.pid")); not starting another"
        return
    fi
    [[ $DRY -eq 1 || -z $SWEEP || -r $SWEEP || -f $STATE_DIR/sweep.sqlite ]] || { say "sweep file $SWEEP cannot be read"; exit 2; }
    run mkdir -p "$LOG_DIR" "$STATE_DIR"
    local args=(coordinator --bind "$BIND" --state-dir "$STATE_DIR" --keys "$KEYS" --progress plain)
    [[ -n $SWEEP ]] && args+=(--sweep "$SWEEP")
    if [[ $DRY -eq 1 ]]; then
        echo "+ nohup $(show "$BIN" "${args[@]}" | cut -c3-) >>$(q "$LOG_DIR/coordinator.log") 2>&1 &  # pid -> $LOG_DIR/coordinator.pid"
    else
        nohup "$BIN" "${args[@]}" >>"$LOG_DIR/coordinator.log" 2>&1 &
        echo $! >"$LOG_DIR/coordinator.pid"
        sleep 1
        coordinator_running || { say "coordinator exited at once:"; tail -n 5 "$LOG_DIR/coordinator.log"; exit 1; }
        say "coordinator started (pid $!), log $LOG_DIR/coordinator.log"
    fi
}

start_worker() {
    local i=$1 t=${W_TARGET[$1]} n=${W_NAME[$1]} d=$REMOTE_DIR
    remote "$t" "mkdir -p $(q "$d/keys") $(q "$d/cache") && chmod 700 $(q "$d/keys")"
    run scp -q "${SSH_ARGS[@]}" "$KEYS/hosts/$n.key" "$KEYS/hosts/$n.pub" "$KEYS/coordinator.pub" "$t:$d/keys/"
    local env="" args
    [[ -n ${W_CORETYPE[$i]} ]] && env="OPENBLAS_CORETYPE=$(q "${W_CORETYPE[$i]}") "
    args="worker --connect $(q "$COORDINATOR_ENDPOINT") --name $(q "$n") --key $(q "$d/keys/$n.key")"
    args+=" --server-key $(q "$d/keys/coordinator.pub") --slots ${W_SLOTS[$i]} --cache-dir $(q "$d/cache")"
    [[ -n ${W_THREADS[$i]} ]] && args+=" --threads ${W_THREADS[$i]}"
    # The worker outlives the ssh session (nohup, no terminal); its pid stays in REMOTE_DIR/worker.pid.
    remote "$t" "set -e; cd; chmod 600 $(q "$d/keys/$n.key");
        bin=\$(command -v $(q "${W_BIN[$i]}")) || { echo \"$n: ranksweep binary ${W_BIN[$i]} not found on \$(hostname)\" >&2; exit 1; }
        if [ -f $(q "$d/worker.pid") ] && kill -0 \$(cat $(q "$d/worker.pid")) 2>/dev/null; then echo \"$n: worker already running\"; exit 0; fi
        ${env}nohup \"\$bin\" $args >>$(q "$d/worker.log") 2>&1 </dev/null &
        echo \$! >$(q "$d/worker.pid"); echo \"$n: worker started (pid \$!)\""
}

gather_logs() {
    local i
    run mkdir -p "$LOG_DIR"
    for i in "${!W_NAME[@]}"; do
        run scp -q "${SSH_ARGS[@]}" "${W_TARGET[$i]}:$REMOTE_DIR/worker.log" "$LOG_DIR/worker-${W_NAME[$i]}.log" ||
            say "no log from ${W_NAME[$i]} (${W_TARGET[$i]})"
    done
    [[ $DRY -eq 1 ]] || say "logs in $LOG_DIR/"
}

case $VERB in
    start)
        ensure_keys
        start_coordinator
        for i in "${!W_NAME[@]}"; do start_worker "$i" || say "worker ${W_NAME[$i]} on ${W_TARGET[$i]} did not start"; done
        say "started; watch with: $0 --hosts $HOSTS_FILE status"
        ;;
    status)
        if [[ -f $STATE_DIR/sweep.sqlite || $DRY -eq 1 ]]; then run "$BIN" status --state-dir "$STATE_DIR" || true; fi
        if [[ $DRY -eq 0 ]]; then
            if coordinator_running; then say "coordinator: running (pid $(cat "$LOG_DIR/coordinator.pid"))"; else say "coordinator: not running"; fi
        fi
        for i in "${!W_NAME[@]}"; do
            remote "${W_TARGET[$i]}" "if [ -f $(q "$REMOTE_DIR/worker.pid") ] && kill -0 \$(cat $(q "$REMOTE_DIR/worker.pid")) 2>/dev/null;
                then echo \"${W_NAME[$i]}: running\"; else echo \"${W_NAME[$i]}: not running\"; fi" || say "${W_NAME[$i]}: unreachable"
        done
        gather_logs
        ;;
    logs)
        gather_logs
        ;;
    stop)
        for i in "${!W_NAME[@]}"; do
            # SIGTERM: the worker hands its running jobs back (requeued, not failed), says BYE and exits.
            remote "${W_TARGET[$i]}" "if [ -f $(q "$REMOTE_DIR/worker.pid") ]; then kill -TERM \$(cat $(q "$REMOTE_DIR/worker.pid")) 2>/dev/null || true;
                rm -f $(q "$REMOTE_DIR/worker.pid"); fi; echo \"${W_NAME[$i]}: stopped\"" || say "${W_NAME[$i]}: unreachable"
        done
        if [[ $DRY -eq 1 ]]; then
            echo "+ kill -TERM \$(cat $(q "$LOG_DIR/coordinator.pid"))"
        elif coordinator_running; then
            kill -TERM "$(cat "$LOG_DIR/coordinator.pid")"; rm -f "$LOG_DIR/coordinator.pid"; say "coordinator stopped (state kept in $STATE_DIR: start again to resume)"
        fi
        gather_logs
        ;;
esac
