#!/usr/bin/env bash
# make bench-mpi-net (needs root): data-parallel training "across hosts" on
# this machine. RANKS network namespaces (ssmpi0, ssmpi1, ...), each with a
# veth pair to a hub namespace (ssmpihub, which routes between them), each in
# its own subnet (NET.i.0/24: the rank at NET.i.2, the hub at NET.i.1); the
# ranks' traffic crosses only those links. Per link setting RATE:RTT of LINKS
# each rank's link egress is shaped to RATE (tc tbf) and every packet between
# two ranks is delayed by RTT/2 one way (so a round trip takes RTT): with tc
# netem (delay RTT/2 on each rank's egress) when the kernel has it, else with
# build/netdelay (eval/netdelay.c: a TUN device in the hub that hands each
# packet back to the kernel RTT/2 later; the hub routes rank-to-rank packets
# through it). One more setting, "none", is the same namespaces unshaped.
#
# Per setting and config, `selfsup-mpi pretrain` (clm, 1 thread per rank, the
# global batch of eval/bench_mpi.sh, its data and configs S, M and T) runs
# STEPS steps under mpirun, started in the hub with Open MPI's rsh launcher and
# an agent that runs each daemon through `ip netns exec HOST` (hosts are named
# by namespace; /etc/netns/NS/hosts resolves them; each namespace gets its own
# host name, and with PIN=1 host i runs on core i mod cores), TCP only
# (pml ob1, btl tcp,self) and only on NET.0.0/16 (btl and oob). Reported: the
# tokens/s, step time and the share of the step rank 0 spends in the
# reductions across ranks (metrics.jsonl comm_s, waiting included), medians
# over the log windows of 5 steps after the first; the gradient bytes (4 x
# parameters, from the run's model.safetensors); the bytes rank 0's link sent
# per step (its veth's counter) against the 2 (N-1)/N x gradient bytes
# the reduction must send, the bytes that went through its tbf, those bytes
# over the time in the reductions (a lower bound on the rate achieved), and
# the round trip time between two ranks measured before the run (a TCP
# ping-pong). Each run twice (OVERLAP): with the gradient buckets summed
# during the backward pass (on, --comm-overlap) and with everything summed
# after it (off, selfsup's default); with buckets comm_s counts only the
# reduction time the backward did not hide, and the step times compare the two.
#
# Everything it creates (namespaces, their veths, the hub, /etc/netns/ssmpi*,
# the processes inside the namespaces) is removed on exit, error or Ctrl-C,
# and leftovers of an earlier run that was killed are removed first.
#
# Environment: RANKS (2), LINKS ("1gbit:0.1ms 1gbit:1ms 10gbit:0.1ms
# 10gbit:1ms": tc rates (kbit, mbit, gbit) and round-trip times (ms or us)),
# CONFIGS ("S M"; T: a tiny model to check the script), STEPS (40; at least
# 10), RUNS (1), OVERLAP ("on off"), DELAY (auto | netem | netdelay), PIN (1), NET (10.213),
# B (build). Results to eval/work/bench_mpi_net.jsonl and a table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
RANKS=${RANKS:-2}; STEPS=${STEPS:-40}; CONFIGS=${CONFIGS:-S M}; RUNS=${RUNS:-1}; OVERLAP=${OVERLAP:-on off}
LINKS=${LINKS:-1gbit:0.1ms 1gbit:1ms 10gbit:0.1ms 10gbit:1ms}
DELAY=${DELAY:-auto}; PIN=${PIN:-1}; NET=${NET:-10.213}
B=${B:-build}
W=eval/work/bench_mpi_net
D=eval/work/bench_mpi # the data of eval/bench_mpi.sh (the same tokenizer and shards)
OUT=eval/work/bench_mpi_net.jsonl
HUB=ssmpihub
PY=/usr/bin/python3
die() { echo "bench-mpi-net: $*" >&2; exit 1; }

# ---- what it needs ------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces, veth pairs and tc qdiscs): run it as root"
for c in ip tc mpirun unshare taskset chrt "$PY"; do
  command -v "$c" >/dev/null || die "'$c' is missing (ip, tc: Debian's iproute2; mpirun: openmpi-bin; unshare, taskset, chrt: util-linux; $PY: python3)"
done
[ -x "$B/selfsup-mpi" ] || die "$B/selfsup-mpi is not built (make mpi)"
[ -x "$B/selfsup" ] || die "$B/selfsup is not built (make)"
if ! [[ $RANKS =~ ^[0-9]+$ ]] || [ "$RANKS" -lt 2 ] || [ "$RANKS" -gt 250 ]; then die "RANKS must be 2..250, not '$RANKS'"; fi
if ! [[ $STEPS =~ ^[0-9]+$ ]] || [ "$STEPS" -lt 10 ]; then die "STEPS must be at least 10, not '$STEPS'"; fi
if ! [[ $RUNS =~ ^[0-9]+$ ]] || [ "$RUNS" -lt 1 ]; then die "RUNS must be at least 1, not '$RUNS'"; fi
[[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "NET must be the first two bytes of the addresses (like 10.213), not '$NET'"
case $PIN in 0 | 1) ;; *) die "PIN must be 0 or 1, not '$PIN'" ;; esac
case $DELAY in auto | netem | netdelay) ;; *) die "DELAY must be auto, netem or netdelay, not '$DELAY'" ;; esac
# LINKS: RATE:RTT; the rate in bits/s and the one-way delay in microseconds
declare -A RATE_BPS HALF_US
for l in $LINKS; do
  [[ $l =~ ^([0-9]+(\.[0-9]+)?)(kbit|mbit|gbit):([0-9]+(\.[0-9]+)?)(ms|us)$ ]] ||
    die "LINKS: '$l' is not RATE:RTT (like 1gbit:0.1ms; rates in kbit, mbit or gbit, round-trip times in ms or us)"
  RATE_BPS[$l]=$(awk -v v="${BASH_REMATCH[1]}" -v u="${BASH_REMATCH[3]}" \
                 'BEGIN { printf "%.0f", v * (u == "kbit" ? 1e3 : u == "mbit" ? 1e6 : 1e9) }')
  HALF_US[$l]=$(awk -v v="${BASH_REMATCH[4]}" -v u="${BASH_REMATCH[6]}" \
                'BEGIN { printf "%.0f", v * (u == "ms" ? 1000 : 1) / 2 }')
done

source eval/mpi_common.sh
cfg_args() { mpi_cfg_args "$1" || die "unknown config $1"; }
for cfg in $CONFIGS; do cfg_args "$cfg" >/dev/null; done

# ---- cleanup: everything named ssmpi*, also what a killed earlier run left -----
NETDELAY_PID=
# shellcheck disable=SC2086 # $pids: one word per process
cleanup() {
  local ns pids
  [ -z "$NETDELAY_PID" ] || kill "$NETDELAY_PID" 2>/dev/null || true
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^ssmpi/ { print $1 }'); do
    # processes in our namespaces: mpirun, the daemons, the ranks, netdelay
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -z "$pids" ] || kill $pids 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^ssmpi/ { print $1 }'); do
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] || break; sleep 0.2; done
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true # takes its veth ends (and their peers) with it
  done
  rm -rf /etc/netns/ssmpi*
  rmdir /etc/netns 2>/dev/null || true # when nothing else is in it
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cleanup # leftovers of a killed earlier run

# ---- data: eval/bench_mpi.sh's (tinyshakespeare, 8192 ids, shards) -------------
mkdir -p "$W"
mpi_bench_data "$D"

# ---- the namespaces -----------------------------------------------------------
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
host() { echo "ssmpi$1"; }
hosts_file() {
  echo "127.0.0.1 localhost"
  echo "::1 localhost"
  echo "$NET.0.1 $HUB"
  for i in $(seq 0 $((RANKS - 1))); do echo "$NET.$i.2 $(host "$i")"; done
}
ip netns add "$HUB"
nsx "$HUB" ip link set lo up
nsx "$HUB" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
: >"$W/hostfile"
for i in $(seq 0 $((RANKS - 1))); do
  h=$(host "$i")
  ip netns add "$h"
  nsx "$h" ip link set lo up
  ip link add eth0 netns "$h" type veth peer name "v$i" netns "$HUB"
  nsx "$h" ip addr add "$NET.$i.2/24" dev eth0
  nsx "$h" ip link set eth0 up
  nsx "$h" ip route add default via "$NET.$i.1"
  nsx "$HUB" ip addr add "$NET.$i.1/24" dev "v$i"
  nsx "$HUB" ip link set "v$i" up
  echo "$h slots=1" >>"$W/hostfile"
done
# ip netns exec NS bind-mounts /etc/netns/NS/* over /etc: names without DNS
for ns in "$HUB" $(for i in $(seq 0 $((RANKS - 1))); do host "$i"; done); do
  mkdir -p "/etc/netns/$ns"
  hosts_file >"/etc/netns/$ns/hosts"
  echo "# bench-mpi-net: no DNS in the namespaces (/etc/netns/$ns/hosts has the names)" >"/etc/netns/$ns/resolv.conf"
done

# How links get their delay: netem when the kernel has it.
netem=0
if nsx "$HUB" tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then nsx "$HUB" tc qdisc del dev lo root; netem=1; fi
[ "$DELAY" != auto ] || DELAY=$([ $netem = 1 ] && echo netem || echo netdelay)
case $DELAY in
  netem) [ $netem = 1 ] || die "DELAY=netem: this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM); DELAY=auto uses $B/netdelay" ;;
  netdelay) [ -x "$B/netdelay" ] || die "$B/netdelay is not built (make bench-mpi-net builds it; it delays the packets: $(
              [ $netem = 1 ] && echo "DELAY=netem uses tc netem instead" || echo "this kernel has no netem qdisc"))"
            [ -c /dev/net/tun ] || die "no /dev/net/tun for $B/netdelay" ;;
esac

# Open MPI's rsh agent: "agent.sh [options] HOST COMMAND..." runs the command
# line (as ssh would) in namespace HOST, under host name HOST, pinned.
# the cores this script may use (nproc would count OMP_NUM_THREADS)
CPUS=$("$PY" -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))')
cat >"$W/agent.sh" <<EOF
#!/bin/sh
# Written by eval/bench_mpi_net.sh: Open MPI's plm_rsh_agent for the namespaces.
while [ \$# -gt 0 ]; do case \$1 in -*) shift ;; *) break ;; esac; done
host=\$1; shift
cmd=\$*
case \$host in ssmpi[0-9]*) ;; *) echo "agent.sh: unknown host '\$host'" >&2; exit 1 ;; esac
i=\${host#ssmpi}
set -- $CPUS
if [ $PIN = 1 ]; then shift \$((i % \$#)); cpu=\$1; else cpu=\$(echo "\$*" | tr ' ' ,); fi
exec ip netns exec "\$host" unshare --uts sh -c 'hostname "\$1" && exec taskset -c "\$2" sh -c "\$3"' agent "\$host" "\$cpu" "\$cmd"
EOF
chmod +x "$W/agent.sh"

# ---- shaping ------------------------------------------------------------------
# shape LINK: tbf at the rate on each rank's eth0, and the delay (none: no shaping).
shape() {
  local l=$1 i h rate half burst
  for i in $(seq 0 $((RANKS - 1))); do nsx "$(host "$i")" tc qdisc del dev eth0 root 2>/dev/null || true; done
  [ "$l" != none ] || return 0
  rate=${RATE_BPS[$l]} half=${HALF_US[$l]}
  # burst: 100 us at the rate, at least 128 KB (two of TCP's 64 KB GSO packets, which tbf would cut up)
  burst=$(( rate / 8 / 10000 > 131072 ? rate / 8 / 10000 : 131072 ))
  for i in $(seq 0 $((RANKS - 1))); do
    h=$(host "$i")
    if [ "$DELAY" = netem ] && [ "$half" -gt 0 ]; then
      nsx "$h" tc qdisc add dev eth0 root handle 1: netem delay "${half}us" limit 100000
      nsx "$h" tc qdisc add dev eth0 parent 1:1 handle 10: tbf rate "$rate" burst "$burst" latency 20ms
    else
      nsx "$h" tc qdisc add dev eth0 root handle 10: tbf rate "$rate" burst "$burst" latency 20ms
    fi
  done
  if [ "$DELAY" = netdelay ] && [ "$half" -gt 0 ]; then
    # real-time priority: a wire's delay does not grow with the hosts' load (it
    # sleeps between packets; the ranks spin in MPI while they wait)
    ip netns exec "$HUB" chrt -f 10 "$B/netdelay" dly "$half" >"$W/netdelay.out" 2>"$W/netdelay.err" & # $!: netdelay itself
    NETDELAY_PID=$!
    for _ in $(seq 100); do grep -qs ready "$W/netdelay.out" && break; sleep 0.05; done
    grep -qs ready "$W/netdelay.out" || die "netdelay did not start: $(cat "$W/netdelay.err")"
    nsx "$HUB" sysctl -qw net.ipv4.conf.dly.rp_filter=0
    nsx "$HUB" ip link set dly up
    nsx "$HUB" ip route add default dev dly table 100
    # what arrives from a rank for another rank goes through dly; what comes back
    # out of dly (iif dly) is routed by the main table; the hub's own addresses
    # (the local table, looked up first) are not delayed
    for i in $(seq 0 $((RANKS - 1))); do nsx "$HUB" ip rule add iif "v$i" lookup 100 pref 100; done
  fi
}
# unshape: stop netdelay (its counts to $W/netdelay.err), drop its rules
unshape() {
  local i
  if [ -n "$NETDELAY_PID" ]; then
    kill "$NETDELAY_PID" 2>/dev/null || true
    wait "$NETDELAY_PID" 2>/dev/null || true
    NETDELAY_PID=
    for i in $(seq 0 $((RANKS - 1))); do nsx "$HUB" ip rule del iif "v$i" lookup 100 pref 100 2>/dev/null || true; done
  fi
}

# The round trip time between the first two ranks: median of 200 TCP
# ping-pongs of one byte (TCP_NODELAY), in ms.
cat >"$W/pingpong.py" <<'PY'
import socket, statistics, sys, time
mode, addr = sys.argv[1], sys.argv[2]
if mode == "serve":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, 5999)); s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while (b := c.recv(1)):
        c.sendall(b)
else:
    for _ in range(100):
        try:
            c = socket.create_connection((addr, 5999)); break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit("no connection")
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = []
    for k in range(220):
        t0 = time.perf_counter(); c.sendall(b"x"); c.recv(1); t.append(time.perf_counter() - t0)
    print(f"{1e3 * statistics.median(t[20:]):.3f}")
PY
rtt() {
  ip netns exec "$(host 1)" "$PY" "$W/pingpong.py" serve "$NET.1.2" >/dev/null &
  local srv=$! ms
  ms=$(ip netns exec "$(host 0)" "$PY" "$W/pingpong.py" ping "$NET.1.2" 2>/dev/null) || { ms=null; kill "$srv" 2>/dev/null || true; }
  wait "$srv" 2>/dev/null || true
  echo "$ms"
}

# counters of rank 0's eth0: bytes the veth sent, bytes through its tbf
tx_bytes() { nsx "$(host 0)" cat /sys/class/net/eth0/statistics/tx_bytes; }
tbf_bytes() {
  nsx "$(host 0)" tc -s -j qdisc show dev eth0 |
    "$PY" -c 'import json, sys; print(sum(q.get("bytes", 0) for q in json.load(sys.stdin) if q.get("kind") == "tbf"))'
}

# ---- one run: LINK CONFIG -> one JSON line ---------------------------------------
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() {
  local l=$1 cfg=$2 ov=$3 out="$W/run-$2-${1//[:.]/_}-$3" ms tx0 tx1 q0 q1 rc=0 ovf=()
  [ "$ov" = on ] && ovf=(--comm-overlap)
  shape "$l"
  ms=$(rtt)
  tx0=$(tx_bytes) q0=$(tbf_bytes)
  # In the background, so that a signal reaches this script's traps at once
  # (the cleanup then ends mpirun and the ranks) instead of after the run.
  # shellcheck disable=SC2046,SC2016 # cfg_args: words; $0, $@: of that sh
  ip netns exec "$HUB" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$HUB" \
    mpirun -np "$RANKS" --hostfile "$W/hostfile" --bind-to none \
    --mca plm_rsh_agent "$PWD/$W/agent.sh" --mca plm_rsh_no_tree_spawn 1 \
    --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$NET.0.0/16" --mca oob_tcp_if_include "$NET.0.0/16" \
    "$B/selfsup-mpi" pretrain --objective clm --data "$D/shards" $(cfg_args "$cfg") --steps "$STEPS" --log-every 5 \
    --eval-every 0 --save-every 0 --threads 1 --seed 1 "${ovf[@]}" --out "$out" --overwrite </dev/null >"$out.log" 2>&1 &
  wait $! || rc=$?
  tx1=$(tx_bytes) q1=$(tbf_bytes)
  unshape
  [ "$rc" = 0 ] || { tail -n 20 "$out.log" >&2; die "the run $cfg on link $l failed (exit $rc; log: $out.log)"; }
  local nd=""
  [ ! -f "$W/netdelay.err" ] || { nd=$(cat "$W/netdelay.err"); rm -f "$W/netdelay.err" "$W/netdelay.out"; }
  "$PY" - "$out" "$cfg" "$l" "${RATE_BPS[$l]:-0}" "${HALF_US[$l]:-0}" "$RANKS" "$DELAY" "$ms" \
    $((tx1 - tx0)) $((q1 - q0)) "$nd" "$STEPS" "$ov" <<'PY'
import json, re, statistics, struct, sys
run, cfg, link, rate, half, ranks, delay, rtt, tx, shaped, nd, steps, ov = sys.argv[1:]
# netdelay's counts: the bytes it delayed, how far from the due time it sent them
m = re.search(r" packets, (\d+) bytes;.* sent ([0-9.]+) us after the due time on average", nd)
if nd and not m:
    sys.exit("bench-mpi-net: netdelay's counts not understood: " + nd)
ranks, steps = int(ranks), int(steps)
st = json.load(open(run + "/trainer_state.json"))
per_step = st["tokens_seen"] / st["step"]
rows = [json.loads(l) for l in open(run + "/metrics.jsonl") if '"tokens_per_s"' in l]
win = []  # (steps, seconds, comm seconds) of each window after the first (warm-up)
for prev, r in zip(rows, rows[1:]):
    n = r["step"] - prev["step"]
    win.append((n, n * per_step / r["tokens_per_s"], r["comm_s"]))
with open(run + "/model.safetensors", "rb") as f:  # gradient bytes: the trained tensors, fp32
    head = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
grad = sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in head.items() if k != "__metadata__")
shaped_link = link != "none"
print(json.dumps({
    "link": link, "rate_bit_s": int(rate) if shaped_link else None,
    "rtt_ms": 2 * int(half) / 1e3 if shaped_link else None, "delay": delay if shaped_link and int(half) else None,
    "measured_rtt_ms": None if rtt == "null" else float(rtt), "config": cfg, "ranks": ranks, "overlap": ov,
    "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rows[1:]),
    "step_ms": 1e3 * statistics.median(s / n for n, s, c in win),
    "comm_ms": 1e3 * statistics.median(c / n for n, s, c in win),
    "comm_share": statistics.median(c / s for n, s, c in win),
    "grad_bytes": grad,
    # rank 0's link: bytes sent per step (the whole run, start-up included), against
    # what the reduction must send (2 (N-1)/N x the gradient bytes), and through its tbf
    "tx_bytes_per_step": int(tx) / steps, "tx_over_reduction": int(tx) / steps / (2 * (ranks - 1) / ranks * grad),
    "tbf_bytes_per_step": int(shaped) / steps if shaped_link else None,
    # what rank 0 sent per step over its time in the reductions: a lower bound on the rate they
    # achieved (that time includes waiting for the other ranks and the statistics' reduction)
    "reduction_gbit_s": 8 * int(tx) / steps / statistics.median(c / n for n, s, c in win) / 1e9,
    "delayed_bytes": int(m[1]) if m else None, "delay_late_us": float(m[2]) if m else None,
    "gemm": st.get("gemm"), "windows": len(win), "steps": steps}))
PY
}

echo "# machine: $(echo "$CPUS" | wc -w) cores; $RANKS ranks x 1 thread in network namespaces; $RUNS run(s) x $STEPS steps;" \
     "configs $CONFIGS; links: none $LINKS (delay by $DELAY)"
: >"$OUT"
for _ in $(seq "$RUNS"); do
  for l in none $LINKS; do
    for cfg in $CONFIGS; do
      for ov in $OVERLAP; do run "$l" "$cfg" "$ov" >>"$OUT"; tail -n 1 "$OUT"; done
    done
  done
done
"$PY" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(sel, key):
    v = [r[key] for r in sel if r[key] is not None]
    return statistics.median(v) if v else None
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
print()
print("| config | link (rate, round trip) | buckets during the backward | ranks | tokens/s | step time "
      "| in reductions after the backward | share of step "
      "| gradient bytes | rank 0 sent per step (/ 2(N-1)/N x gradients) | of which through its tbf "
      "| sent / time in reductions | measured round trip |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
overlap_gain = []
for cfg in dict.fromkeys(r["config"] for r in rows):
    for link in dict.fromkeys(r["link"] for r in rows):
      steps = {}
      for ov in dict.fromkeys(r.get("overlap", "off") for r in rows):
        sel = [r for r in rows if r["config"] == cfg and r["link"] == link and r.get("overlap", "off") == ov]
        if not sel:
            continue
        steps[ov] = med(sel, "step_ms")
        x = sel[0]
        tbf = med(sel, "tbf_bytes_per_step")  # on the wire: with each 1448-byte segment's headers
        name = "none (unshaped)" if link == "none" else link.replace(":", ", ")
        print(f"| {cfg} | {name} | {ov} | {x['ranks']} | {med(sel, 'tokens_per_s'):,.0f} | {med(sel, 'step_ms'):,.1f} ms "
              f"| {med(sel, 'comm_ms'):,.1f} ms | {100 * med(sel, 'comm_share'):.1f}% | {x['grad_bytes'] / 1e6:.2f} MB "
              f"| {med(sel, 'tx_bytes_per_step') / 1e6:.2f} MB ({med(sel, 'tx_over_reduction'):.2f}) "
              f"| {f(tbf and tbf / 1e6, '.2f')}{' MB' if tbf else ''} | {med(sel, 'reduction_gbit_s'):.2f} Gbit/s "
              f"| {f(med(sel, 'measured_rtt_ms'), '.3f')} ms |")
      if "on" in steps and "off" in steps:
          overlap_gain.append((cfg, link, steps["off"], steps["on"]))
if overlap_gain:
    print()
    print("buckets during the backward (on) against everything after it (off), median step times:")
    for cfg, link, off, on in overlap_gain:
        print(f"  {cfg} {link}: {off:,.1f} ms -> {on:,.1f} ms ({100 * (on / off - 1):+.1f}%)")
PY
