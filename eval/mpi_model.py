#!/usr/bin/env python3
"""Data-parallel selfsup across machines, on paper, from measurements.

Reads make bench-mpi's rows (eval/work/bench_mpi.jsonl: tokens/s of one
machine) and make bench-mpi-net's rows (eval/work/bench_mpi_net.jsonl: the
reductions' time on shaped links between network namespaces), and prints:

1. the model checked against the 2-rank runs on shaped links: predicted
   against measured time in the reductions per step;
2. the table: per config, link rate and machine count N, the time in the
   reductions per step and the per-machine batch that 90% scaling
   efficiency needs.

The model (recursive halving/doubling all-reduce, as src/train/dist_mpi.c):
    t_comm(N) = 2 (N-1)/N x G / (e x BW)  +  4 log2(N) x a
    t_comp    = (tokens per machine per step) / r
    E(N)      = t_comp / (t_comp + t_comm);  E >= 90%  <=>  tokens >= 9 r t_comm
G: gradient bytes x 8 (bits); BW: the link's nominal rate; e: the share of it
the reductions achieved on the measured 1 Gbit/s links (TCP, framing, slow
start after each step's idle compute phase); a: the one-way latency of one
message, half the measured round trip (the reductions are 2 log2 N
messages, the statistics' reduction 2 log2 N more). r: tokens/s of one
machine (1 rank x 2 threads, make bench-mpi).

usage: eval/mpi_model.py [bench_mpi.jsonl] [bench_mpi_net.jsonl]
"""
import json
import math
import statistics
import sys

MPI = sys.argv[1] if len(sys.argv) > 1 else "eval/work/bench_mpi.jsonl"
NET = sys.argv[2] if len(sys.argv) > 2 else "eval/work/bench_mpi_net.jsonl"
T = {"S": 128, "M": 256}


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


mpi, net = rows(MPI), rows(NET)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


r = {c: med([x["tokens_per_s"] for x in mpi if x["config"] == c and x["mode"] == "1x2"]) for c in T}
grad = {c: med([x["grad_bytes"] for x in net if x["config"] == c]) for c in T}

# e: achieved share of the nominal rate on the 1 Gbit/s links (both delays, both configs);
# the model's bandwidth term against the measured reduction time, latency term removed
shaped = [x for x in net if x["rate_bit_s"] and x["ranks"] == 2]


def one_way_s(x):
    return (x["measured_rtt_ms"] or 0) / 2e3


effs = []
for x in shaped:
    if x["rate_bit_s"] > 2e9:
        continue
    t_bw = x["comm_ms"] / 1e3 - 4 * one_way_s(x)  # N = 2: 4 log2(2) = 4 messages
    effs.append(x["grad_bytes"] * 8 / x["rate_bit_s"] / t_bw)
e = med(effs)
a_lo = med([one_way_s(x) for x in shaped if x["rtt_ms"] and x["rtt_ms"] < 0.5])
a_hi = med([one_way_s(x) for x in shaped if x["rtt_ms"] and x["rtt_ms"] >= 0.5])


def t_comm(c, n, bw, a):
    return 2 * (n - 1) / n * grad[c] * 8 / (e * bw) + 4 * math.log2(n) * a


print(f"inputs: r (1 machine = 1 rank x 2 threads) S {r['S']:,.0f}, M {r['M']:,.0f} tokens/s; "
      f"gradients S {grad['S'] / 1e6:.1f} MB, M {grad['M'] / 1e6:.1f} MB; "
      f"e = {e:.2f} of the nominal rate (median of {len(effs)} runs at 1 Gbit/s); "
      f"a = {a_lo * 1e3:.3f} ms and {a_hi * 1e3:.3f} ms (half the measured round trips of the 0.1 ms and 1 ms links)")
print()
print("1. The model against the 2-rank runs on shaped links (time in the reductions per step; e is fitted on "
      "the 1 Gbit/s rows, so there model / measured is near 1 by construction and its spread shows the fit; "
      "the 10 Gbit/s rows test it):")
print()
print("| config | link | measured round trip | measured | model | model / measured |")
print("|---|---|---|---|---|---|")
for x in sorted(shaped, key=lambda x: (x["config"], x["rate_bit_s"], x["rtt_ms"])):
    m = t_comm(x["config"], 2, x["rate_bit_s"], one_way_s(x)) * 1e3
    print(f"| {x['config']} | {x['rate_bit_s'] / 1e9:g} Gbit/s, {x['rtt_ms']:g} ms | {x['measured_rtt_ms']:.3f} ms "
          f"| {x['comm_ms']:.1f} ms | {m:.1f} ms | {m / x['comm_ms']:.2f} |")
print()
for a, label in ((a_lo, "0.1 ms"), (a_hi, "1 ms")):
    if a != a:
        continue
    print(f"2. Scaling to N machines, round trip {label} (a = {a * 1e3:.3f} ms): t_comm per step; "
          "the tokens per machine per step for 90% efficiency (whole sequences of the config's T; "
          "global batch = N x that); and the efficiency at the config's default batch (S 16 x 128, M 8 x 256 "
          "per machine):")
    print()
    print("| config | link | N = 8 | N = 32 | N = 128 |")
    print("|---|---|---|---|---|")
    for c in ("S", "M"):
        for bw in (1e9, 10e9, 100e9):
            cells = []
            for n in (8, 32, 128):
                tc = t_comm(c, n, bw, a)
                need = 9 * r[c] * tc
                seq = math.ceil(need / T[c])
                default = 2048 / r[c]
                cells.append(f"{tc * 1e3:.3g} ms; {need / 1e3:.3g} k tokens = {seq} seq; "
                             f"default batch {100 * default / (default + tc):.0f}%")
            print(f"| {c} | {bw / 1e9:g} Gbit/s | " + " | ".join(cells) + " |")
    print()
