#!/usr/bin/env bash
# Start, watch and stop a ranksweep sweep on several hosts over ssh.
#
#   cluster/launch.sh [--hosts FILE] [--dry-run] start|status|logs|stop
#
#   start   makes missing keys (coordinator pair, one pair per worker host, the allowlist), starts the
#           coordinator here in the background, copies each worker its key pair and the coordinator's
#           public key, copies BIN to hosts that lack it or whose `ranksweep --version` differs
#           (REMOTE_DIR/bin/ranksweep; give it the static binary of `make install`), refuses a host
#           whose binary speaks another protocol (copy=no), and starts `ranksweep worker` there (nohup)
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
W_TARGET=() W_NAME=() W_SLOTS=() W_THREADS=() W_BIN=() W_CORETYPE=() W_COPY=() W_RUN=()
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
    name=${host%%.*} slots=1 threads="" wbin=ranksweep coretype="" copy=yes
    for opt in "${f[@]:2}"; do
        case $opt in
            name=*) name=${opt#name=} ;;
            slots=*) slots=${opt#slots=} ;;
            threads=*) threads=${opt#threads=} ;;
            bin=*) wbin=${opt#bin=} ;;
            coretype=*) coretype=${opt#coretype=} ;;
            copy=yes|copy=no) copy=${opt#copy=} ;;
            copy=*) echo "launch.sh: $HOSTS_FILE:$lineno: copy must be yes or no" >&2; exit 2 ;;
            *) echo "launch.sh: $HOSTS_FILE:$lineno: unknown worker option $opt" >&2; exit 2 ;;
        esac
    done
    [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || { echo "launch.sh: $HOSTS_FILE:$lineno: name '$name' must be letters, digits, - or _" >&2; exit 2; }
    [[ $slots =~ ^[1-9][0-9]*$ ]] || { echo "launch.sh: $HOSTS_FILE:$lineno: slots must be a positive integer" >&2; exit 2; }
    [[ -z $threads || $threads =~ ^[1-9][0-9]*$ ]] || { echo "launch.sh: $HOSTS_FILE:$lineno: threads must be a positive integer" >&2; exit 2; }
    for n in "${W_NAME[@]}"; do [[ $n != "$name" ]] || { echo "launch.sh: $HOSTS_FILE:$lineno: worker name $name used twice (give name=)" >&2; exit 2; }; done
    W_TARGET+=("$target") W_NAME+=("$name") W_SLOTS+=("$slots") W_THREADS+=("$threads") W_BIN+=("$wbin") W_CORETYPE+=("$coretype") W_COPY+=("$copy")
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

# The binary workers must run: this machine's BIN, its version and wire protocol (set once).
LOCAL_FILE="" LOCAL_VERSION="" LOCAL_PROTOCOL=""
local_binary() {
    [[ -n $LOCAL_FILE ]] && return 0
    LOCAL_FILE=$(command -v "$BIN") || { say "ranksweep binary $BIN not found here"; exit 2; }
    LOCAL_VERSION=$("$LOCAL_FILE" --version) && LOCAL_PROTOCOL=$("$LOCAL_FILE" version --protocol) ||
        { say "$LOCAL_FILE does not run here"; exit 2; }
}

# probe TARGET PATH: "VERSION|PROTOCOL" of the binary PATH on the host ("?" for a protocol an older
# binary cannot tell), or nothing when it is missing or does not run there.
probe() {
    ssh "${SSH_ARGS[@]}" "$1" "b=\$(command -v $(q "$2")) && v=\$(\"\$b\" --version 2>/dev/null) &&
        { p=\$(\"\$b\" version --protocol 2>/dev/null) || p='?'; echo \"\$v|\$p\"; }" 2>/dev/null || true
}

# ensure_binary I: picks the binary worker I runs (W_RUN), copying BIN there when the host lacks it
# or has another version; returns 1, with a message, when the worker must not start.
ensure_binary() {
    local i=$1 t=${W_TARGET[$1]} n=${W_NAME[$1]} want=${W_BIN[$1]} copied=$REMOTE_DIR/bin/ranksweep
    W_RUN[$i]=$want
    [[ $DRY -eq 1 ]] && { echo "+ (copy $BIN to $t:$copied if $want there is missing or not of this version)"; return 0; }
    local_binary
    local ours="$LOCAL_VERSION|$LOCAL_PROTOCOL" got copy
    got=$(probe "$t" "$want")
    [[ $got == "$ours" ]] && return 0
    copy=$(probe "$t" "$copied")
    if [[ $copy == "$ours" ]]; then W_RUN[$i]=$copied; say "$n: using $copied (ranksweep $LOCAL_VERSION)"; return 0; fi
    if [[ ${W_COPY[$i]} == yes ]]; then
        local found="missing"
        [[ -n $got ]] && found="ranksweep ${got%|*}, not $LOCAL_VERSION"
        say "$n: $want on $t is $found; copying $LOCAL_FILE to $copied"
        remote "$t" "mkdir -p $(q "$REMOTE_DIR/bin")" &&
            run scp -q "${SSH_ARGS[@]}" "$LOCAL_FILE" "$t:$copied.new" &&
            remote "$t" "chmod 755 $(q "$copied.new") && mv -f $(q "$copied.new") $(q "$copied")" ||
            { say "$n: copying the binary to $t failed; not starting it"; return 1; }
        copy=$(probe "$t" "$copied")
        if [[ $copy == "$ours" ]]; then W_RUN[$i]=$copied; return 0; fi
        say "$n: the copied binary does not run on $t (${copy:-it fails to start}): copy the static binary of" \
            "\`make install\` and install the runtime packages of scripts/runtime-packages.txt there; not starting it"
        return 1
    fi
    # copy=no: the host keeps its own binary, which must speak the coordinator's protocol.
    if [[ -z $got ]]; then say "$n: no ranksweep at $want on $t (copy=no); not starting it"; return 1; fi
    if [[ ${got#*|} != "$LOCAL_PROTOCOL" ]]; then
        say "$n: $want on $t is ranksweep ${got%|*} speaking protocol ${got#*|}, the coordinator speaks protocol" \
            "$LOCAL_PROTOCOL (ranksweep $LOCAL_VERSION); not starting it (drop copy=no to install this binary there)"
        return 1
    fi
    say "$n: $want on $t is ranksweep ${got%|*} (here $LOCAL_VERSION), same protocol $LOCAL_PROTOCOL: using it"
}

start_worker() {
    local i=$1 t=${W_TARGET[$1]} n=${W_NAME[$1]} d=$REMOTE_DIR
    ensure_binary "$i" || return 1
    remote "$t" "mkdir -p $(q "$d/keys") $(q "$d/cache") && chmod 700 $(q "$d/keys")"
    run scp -q "${SSH_ARGS[@]}" "$KEYS/hosts/$n.key" "$KEYS/hosts/$n.pub" "$KEYS/coordinator.pub" "$t:$d/keys/"
    local env="" args
    [[ -n ${W_CORETYPE[$i]} ]] && env="OPENBLAS_CORETYPE=$(q "${W_CORETYPE[$i]}") "
    args="worker --connect $(q "$COORDINATOR_ENDPOINT") --name $(q "$n") --key $(q "$d/keys/$n.key")"
    args+=" --server-key $(q "$d/keys/coordinator.pub") --slots ${W_SLOTS[$i]} --cache-dir $(q "$d/cache")"
    [[ -n ${W_THREADS[$i]} ]] && args+=" --threads ${W_THREADS[$i]}"
    # The worker outlives the ssh session (nohup, no terminal); its pid stays in REMOTE_DIR/worker.pid.
    remote "$t" "set -e; cd; chmod 600 $(q "$d/keys/$n.key");
        bin=\$(command -v $(q "${W_RUN[$i]}")) || { echo \"$n: ranksweep binary ${W_RUN[$i]} not found on \$(hostname)\" >&2; exit 1; }
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
        failed=0
        for i in "${!W_NAME[@]}"; do
            start_worker "$i" || { say "worker ${W_NAME[$i]} on ${W_TARGET[$i]} did not start"; failed=$((failed + 1)); }
        done
        say "started; watch with: $0 --hosts $HOSTS_FILE status"
        # Exit 1 when a worker did not start (the others run): a script sees it, a person reads why above.
        [[ $failed -eq 0 ]] || exit 1
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
