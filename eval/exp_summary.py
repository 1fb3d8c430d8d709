#!/usr/bin/python3
"""Tables (and the label-efficiency plot) from the experiments' eval.json files.

  exp_summary.py sst2 DIR                 DIR/<model>_s<seed>/eval.json
  exp_summary.py label_eff DIR [PNG [FULLDIR N [PRETRAINED SCRATCH]...]]
                                          DIR/<model>_n<size>_s<seed>/eval.json, and
                                          FULLDIR/<model>_s<seed> as size N (all rows);
                                          the PRETRAINED SCRATCH pairs choose the
                                          models (default: all) and their differences
  exp_summary.py imdb DIR                 DIR/<model>/eval.json
  exp_summary.py best DIR MODEL...        the MODEL with the highest mean dev accuracy in DIR

Prints Markdown tables: mean, sample standard deviation, min and max of the
dev accuracy over fine-tuning seeds (and macro-F1, MCC means)."""
import json
import os
import re
import statistics
import subprocess
import sys


def runs(directory, pattern):
    out = []
    for name in sorted(os.listdir(directory)):
        m = re.fullmatch(pattern, name)
        path = os.path.join(directory, name, "eval.json")
        if m and os.path.exists(path):
            with open(path) as f:
                out.append((m.groupdict(), json.load(f)))
    return out


def stats(values):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), sd, min(values), max(values)


def sst2(directory):
    groups = {}
    for key, ev in runs(directory, r"(?P<model>.+)_s(?P<seed>\d+)"):
        groups.setdefault(key["model"], []).append(ev["dev"])
    print("| model | seeds | dev accuracy mean | std | min | max | macro-F1 | MCC |")
    print("|---|---|---|---|---|---|---|---|")
    for model, devs in sorted(groups.items(), key=lambda kv: -statistics.mean(d["accuracy"] for d in kv[1])):
        mean, sd, lo, hi = stats([100 * d["accuracy"] for d in devs])
        f1 = statistics.mean(d["macro_f1"] for d in devs)
        mcc = statistics.mean(d["mcc"] for d in devs)
        print(f"| {model} | {len(devs)} | **{mean:.2f}** | {sd:.2f} | {lo:.2f} | {hi:.2f} | {f1:.4f} | {mcc:.4f} |")


def label_eff(directory, png=None, full_dir=None, full_n=None, *pairs):
    table = {}
    for key, ev in runs(directory, r"(?P<model>.+)_n(?P<n>\d+)_s(?P<seed>\d+)"):
        table.setdefault(key["model"], {}).setdefault(int(key["n"]), []).append(100 * ev["dev"]["accuracy"])
    for key, ev in runs(full_dir, r"(?P<model>.+)_s(?P<seed>\d+)") if full_dir else []:
        if key["model"] in table:
            table[key["model"]].setdefault(int(full_n), []).append(100 * ev["dev"]["accuracy"])
    if pairs:
        table = {m: table.get(m, {}) for m in pairs}
    else:
        pairs = sorted(table) if len(table) == 2 else ()
    sizes = sorted({n for per in table.values() for n in per})
    models = list(table) if pairs else sorted(table)
    diffs = [(pairs[i], pairs[i + 1]) for i in range(0, len(pairs) - 1, 2)]
    heads = [f"{a} - {b}" for a, b in diffs] or ["difference"]
    print("| labelled sentences | " + " | ".join(models + heads) + " |")
    print("|---|" + "---|" * (len(models) + len(heads)))
    data_lines = []
    for n in sizes:
        cells, means = [], []
        for m in models:
            v = table[m].get(n)
            if v:
                mean, sd, _, _ = stats(v)
                means.append(mean)
                cells.append(f"{mean:.2f} ± {sd:.2f} ({len(v)})")
            else:
                means.append(None)
                cells.append("–")
        mean_of = dict(zip(models, means))
        dcells = [f"{mean_of[a] - mean_of[b]:+.2f}" if None not in (mean_of[a], mean_of[b]) else "–"
                  for a, b in diffs] or ["–"]
        print(f"| {n} | " + " | ".join(cells + dcells) + " |")
        data_lines.append(f"{n} " + " ".join("nan" if x is None else f"{x:.3f}" for x in means))
    if png and len(models) >= 1:
        plot(models, data_lines, png)


def plot(models, data_lines, png):
    dat = png + ".dat"
    with open(dat, "w") as f:
        f.write("\n".join(data_lines) + "\n")
    series = ", ".join(f"'{dat}' using 1:{i + 2} with linespoints lw 2 pt 7 title '{m}'" for i, m in enumerate(models))
    script = (f"set terminal pngcairo size 800,500; set output '{png}'; set logscale x; "
              "set xlabel 'labelled training sentences (SST-2)'; set ylabel 'dev accuracy (%), mean of seeds'; "
              "set key bottom right; set grid; set title 'Label efficiency: pretrained vs scratch'; "
              f"plot {series}")
    try:
        subprocess.run(["gnuplot", "-e", script], check=True)
        print(f"plot: {png}")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"no plot ({e})", file=sys.stderr)
    finally:
        os.remove(dat)


def imdb(directory):
    print("| model | dev (2,500 held-out train reviews) | test accuracy (25,000) | test macro-F1 | test MCC |")
    print("|---|---|---|---|---|")
    for key, ev in runs(directory, r"(?P<model>.+)"):
        t = ev.get("test", {})
        print(f"| {key['model']} | {100 * ev['dev']['accuracy']:.2f} | **{100 * t.get('accuracy', float('nan')):.2f}** "
              f"| {t.get('macro_f1', float('nan')):.4f} | {t.get('mcc', float('nan')):.4f} |")


def best(directory, models):
    means = {}
    for key, ev in runs(directory, r"(?P<model>.+)_s(?P<seed>\d+)"):
        if key["model"] in models:
            means.setdefault(key["model"], []).append(ev["dev"]["accuracy"])
    if not means:
        sys.exit(f"no fine-tuning results for {', '.join(models)} in {directory}")
    print(max(means, key=lambda m: statistics.mean(means[m])))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("sst2", "label_eff", "imdb", "best"):
        sys.exit(__doc__)
    if sys.argv[1] == "best":
        best(sys.argv[2], sys.argv[3:])
        sys.exit(0)
    if sys.argv[1] == "sst2":
        sst2(sys.argv[2])
    elif sys.argv[1] == "label_eff":
        label_eff(*sys.argv[2:])
    else:
        imdb(sys.argv[2])
