#!/usr/bin/python3
"""Tables (and the label-efficiency plot) from the experiments' eval.json files.

  exp_summary.py sst2 DIR                 DIR/<model>_s<seed>/eval.json
  exp_summary.py label_eff DIR [PNG [FULLDIR N [PRETRAINED SCRATCH]...]]
                                          DIR/<model>_n<size>_s<seed>/eval.json (size N: N
                                          random sentences; Kpc: K of each class, counted as
                                          K x the classes of the run's labels.json), and
                                          FULLDIR/<model>_s<seed> as size N (all rows);
                                          the PRETRAINED SCRATCH pairs choose the
                                          models (default: all) and their differences
  exp_summary.py imdb DIR                 DIR/<model>/eval.json
  exp_summary.py best DIR MODEL...        the MODEL with the highest mean dev accuracy in DIR
  exp_summary.py curve DIR FULLDIR N NAME=MODEL[,MODEL...]...
                                          label-efficiency curves as TSV lines (name, labels,
                                          mean, std, seeds, run): per size the MODEL with the
                                          highest mean (a recipe chosen on dev)
  exp_summary.py selftrain DIR MODEL      self-training per round, from DIR/<MODEL>_n<N>_s<seed>/
                                          selftrain.json: per run and as mean +- std per size,
                                          the teacher (round 0), the other teachers and their
                                          ensemble (--teachers), the student (round 1), student -
                                          teacher, the pseudo-labels' accuracy where known, and
                                          the later rounds' students (--rounds 2 or more)
  exp_summary.py lever DIR FULLDIR N BASE=MODEL,... LEVER=MODEL,...
                                          a pretraining lever across pretraining seeds: each
                                          MODEL is one pretraining run (one pretraining seed),
                                          fine-tuned with several seeds; per size, each run's
                                          mean ± std, each side's mean of its runs' means, and
                                          the lever's change with its standard error over the
                                          pretraining runs (needs two or more a side), and with
                                          two or more pretraining seeds on both sides, the change
                                          paired by pretraining seed (read from exp_lever.sh's
                                          names: <objective><tag>[-s<S>]+<fine-tuning tag>, no -s
                                          for seed 1)
  exp_summary.py recipe-diff RUN_A RUN_B  how two pretraining runs were made differently: each
                                          model setting (config.json) and training option
                                          (trainer_state.json's options) whose values differ, one
                                          `name: A -> B` line each, the seed left out; an option
                                          the older run's selfsup did not write yet shows as
                                          (unrecorded) (exit 1 when a run's files are missing)
  exp_summary.py spread NPY...            how far apart a model's sentence vectors are (selfsup
                                          embed --npy): mean pairwise cosine, mean distance to
                                          the centroid over mean norm, the top principal
                                          component's share of the variance and the effective
                                          rank (exp of the entropy of the variance shares); a
                                          collapsed body has cosines near 1 and rank near 1
  exp_summary.py plot TSV PNG [XLABEL [TITLE]]
                                          the plot of a curve TSV (name, x, mean, std: mean
                                          with the seeds' std as error bars, log x; '#' lines
                                          are comments), by default the label-efficiency one

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
                key = m.groupdict()
                if "n" in key:
                    key["n"] = size_of(directory, name, key["n"])
                out.append((key, json.load(f)))
    return out


SIZE = r"_n(?P<n>\d+(?:pc)?)_s(?P<seed>\d+)"  # a run's name after its model: labels and seed


class Size(int):
    """A number of labelled sentences: random ones, or per_class of each class
    (finetune --per-class), two different sizes even at the same count."""

    def __new__(cls, total, per_class=None):
        size = super().__new__(cls, total)
        size.per_class = per_class
        return size

    def __eq__(self, other):
        return int(self) == int(other) and self.per_class == getattr(other, "per_class", None)

    def __hash__(self):
        return hash((int(self), self.per_class))

    def __str__(self):
        return f"{int(self)} ({self.per_class} per class)" if self.per_class else str(int(self))

    def __format__(self, spec):  # "{n}" names it, "{n:g}" is the count
        return format(int(self), spec) if spec else str(self)


def size_of(directory, name, n):
    """The Size of run `name` whose name holds _n<n>_: Kpc counts K x the classes in its labels.json."""
    if not n.endswith("pc"):
        return Size(int(n))
    with open(os.path.join(directory, name, "labels.json")) as f:
        return Size(int(n[:-2]) * len(json.load(f)), int(n[:-2]))


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


def accuracies(directory, full_dir=None, full_n=None):
    """{model: {labels: [dev accuracy (%) per seed]}}; FULLDIR's runs count as size N."""
    table = {}
    for key, ev in runs(directory, r"(?P<model>.+)" + SIZE):
        table.setdefault(key["model"], {}).setdefault(key["n"], []).append(100 * ev["dev"]["accuracy"])
    for key, ev in runs(full_dir, r"(?P<model>.+)_s(?P<seed>\d+)") if full_dir else []:
        table.setdefault(key["model"], {}).setdefault(Size(int(full_n)), []).append(100 * ev["dev"]["accuracy"])
    return table


def label_eff(directory, png=None, full_dir=None, full_n=None, *pairs):
    table = accuracies(directory, full_dir, full_n)
    if not pairs:  # the full-size runs join only the models run at smaller sizes
        small = {key["model"] for key, _ in runs(directory, r"(?P<model>.+)" + SIZE)}
        table = {m: v for m, v in table.items() if m in small}
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
    if png:
        plot([(m, [(n, *stats(v)[:2]) for n, v in sorted(table[m].items())]) for m in models if table[m]], png)


def curve(directory, full_dir, full_n, *specs):
    """TSV lines of named curves; NAME=A,B takes per size the recipe (A or B) with the higher mean."""
    table = accuracies(directory, full_dir, full_n)
    print("# curve\tlabels\tmean\tstd\tseeds\trun")
    for spec in specs:
        name, _, models = spec.partition("=")
        candidates = [m for m in (models or name).split(",")]
        missing = [m for m in candidates if m not in table]
        if missing:
            sys.exit(f"no fine-tuning results for {', '.join(missing)} in {directory} or {full_dir}")
        for n in sorted({n for m in candidates for n in table[m]}):
            m = max((m for m in candidates if n in table[m]), key=lambda m: statistics.mean(table[m][n]))
            mean, sd, _, _ = stats(table[m][n])
            print(f"{name}\t{int(n)}\t{mean:.2f}\t{sd:.2f}\t{len(table[m][n])}\t{m}")


def read_curves(tsv):
    curves = {}
    with open(tsv) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.rstrip("\n").split("\t")
            try:
                curves.setdefault(cells[0], []).append((float(cells[1]), float(cells[2]), float(cells[3])))
            except (IndexError, ValueError):
                sys.exit(f"{tsv}:{lineno}: expected curve, x, mean, std (tab-separated)")
    return [(name, sorted(points)) for name, points in curves.items()]


LABELS_X = "labelled training sentences (SST-2)"
LABELS_TITLE = "Label efficiency: pretrained vs scratch"


def plot(curves, png, xlabel=LABELS_X, title=LABELS_TITLE):
    """Mean with std error bars per curve, log x; the PNG appears only when gnuplot drew it
    (gnuplot opens its output before it fails, which once left an empty plot behind)."""
    if not curves:
        print("no plot (no results)", file=sys.stderr)
        return
    tmp = png + ".tmp"
    dats = []
    try:
        for i, (name, points) in enumerate(curves):
            dats.append(f"{png}.{i}.dat")
            with open(dats[-1], "w") as f:
                f.write("".join(f"{n:g} {mean:.3f} {sd:.3f}\n" for n, mean, sd in points))
        # gnuplot's default colours repeat after 8 curves: the later ones dashed, other points
        series = ", ".join(f"'{d}' using 1:2:3 with yerrorlines lw 2 pt {(7, 5, 9)[i // 8 % 3]} dt {1 + i // 8} "
                           f"title '{name}'" for i, (d, (name, _)) in enumerate(zip(dats, curves)))
        xs = [n for _, points in curves for n, _, _ in points]
        script = (f"set terminal pngcairo size 900,620; set output '{tmp}'; set logscale x; "
                  f"set xrange [{min(xs) / 1.4:g}:{max(xs) * 1.4:g}]; set xlabel '{xlabel}'; "
                  + ("set xtics (1e14, 2e14, 5e14, 1e15, 2e15, 5e15, 1e16) format '%.0e'; " if max(xs) > 1e6 else "")
                  + "set ylabel 'SST-2 dev accuracy (%), mean and std over seeds'; "
                  f"set key below; set grid; set title '{title}'; plot {series}")
        subprocess.run(["gnuplot", "-e", script], check=True)
        if not os.path.getsize(tmp):
            raise OSError("gnuplot wrote an empty file")
        os.replace(tmp, png)
        print(f"plot: {png}")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"no plot ({e})", file=sys.stderr)
    finally:
        for path in dats + [tmp]:
            if os.path.exists(path):
                os.remove(path)


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


def selftrain(directory, model):
    rows = {}
    for name in sorted(os.listdir(directory)):
        m = re.fullmatch(re.escape(model) + SIZE, name)
        path = os.path.join(directory, name, "selftrain.json")
        if not m or not os.path.exists(path):
            continue
        with open(path) as f:
            st = json.load(f)
        rounds = st["rounds"]
        if len(rounds) < 2:
            continue  # the student never ran (no confident pseudo-label of some class)
        teachers = [100 * t["dev_accuracy"] for t in st.get("teachers", [])]
        r1 = rounds[1]
        rows.setdefault(size_of(directory, name, m["n"]), []).append({
            "seed": int(m["seed"]), "teacher": 100 * rounds[0]["dev_accuracy"], "teachers": teachers,
            "ensemble": 100 * r1["ensemble_dev_accuracy"] if "ensemble_dev_accuracy" in r1 else None,
            "student": 100 * r1["dev_accuracy"], "pseudo": r1["pseudo_labels"], "candidates": r1["candidates"],
            "pseudo_acc": 100 * r1["pseudo_accuracy"] if "pseudo_accuracy" in r1 else None,
            "later": [100 * r["dev_accuracy"] for r in rounds[2:]]})
    if not rows:
        sys.exit(f"no self-training results for {model} in {directory}")
    fmt = lambda v: "" if v is None else f"{v:.2f}"
    print("| labels | seed | teacher (round 0) | other teachers | their ensemble | student (round 1) "
          "| student - teacher | pseudo-labels (of candidates) | pseudo-label accuracy | rounds 2, 3, ... |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in sorted(rows):
        for r in sorted(rows[n], key=lambda r: r["seed"]):
            others = " / ".join(f"{t:.2f}" for t in r["teachers"][1:])
            print(f"| {n} | {r['seed']} | {r['teacher']:.2f} | {others} | {fmt(r['ensemble'])} | {r['student']:.2f} "
                  f"| {r['student'] - r['teacher']:+.2f} | {r['pseudo']} ({r['candidates']}) | {fmt(r['pseudo_acc'])} "
                  f"| {' / '.join(f'{a:.2f}' for a in r['later'])} |")
        agg = lambda key: [r[key] for r in rows[n] if r[key] is not None]
        ms = lambda v: f"{statistics.mean(v):.2f} ± {stats(v)[1]:.2f}" if v else ""
        diff = [r["student"] - r["teacher"] for r in rows[n]]
        # round k's mean over the runs that reached it, and how many did
        depth = max(len(r["later"]) for r in rows[n])
        later = [[r["later"][k] for r in rows[n] if len(r["later"]) > k] for k in range(depth)]
        later = " / ".join(f"{ms(v)}" + (f" ({len(v)})" if len(v) < len(rows[n]) else "") for v in later)
        print(f"| {n} | mean ± std ({len(rows[n])}) | {ms(agg('teacher'))} | | {ms(agg('ensemble'))} "
              f"| {ms(agg('student'))} | **{statistics.mean(diff):+.2f}** | | {ms(agg('pseudo_acc'))} | {later} |")


def pretraining_seed(model):
    """The pretraining seed in exp_lever.sh's run names: <objective><tag>[-s<S>]+<fine-tuning tag>,
    seed 1 without the -s."""
    m = re.search(r"-s(\d+)(?=\+|$)", model)
    return int(m[1]) if m else 1


def lever(directory, full_dir, full_n, *sides):
    """BASE=... LEVER=...: per size, each pretraining run's fine-tuning mean ± std, each side's mean over
    its pretraining runs, and LEVER - BASE with the standard error sqrt(sd_b^2 / n_b + sd_l^2 / n_l), the
    sd over a side's n pretraining runs' means: the fine-tuning seeds of one pretraining run are not
    independent draws of the lever's effect, the pretraining runs are. Over the pretraining seeds both
    sides have (at least two; a run and its baseline of one seed share data order and masks), also the
    paired change: the mean of the per-seed differences and their standard error, sd / sqrt(n)."""
    table = accuracies(directory, full_dir, full_n)
    named = dict(side.partition("=")[::2] for side in sides)
    if sorted(named) != ["BASE", "LEVER"] or not all(named.values()):
        sys.exit("lever: give BASE=MODEL,... and LEVER=MODEL,... (one model per pretraining run)")
    groups = {side: named[side].split(",") for side in ("BASE", "LEVER")}
    missing = [m for ms in groups.values() for m in ms if m not in table]
    if missing:
        sys.exit(f"no fine-tuning results for {', '.join(missing)} in {directory} or {full_dir}")
    sizes = sorted({n for ms in groups.values() for m in ms for n in table[m]})
    print("| labelled sentences | side | pretraining run | fine-tuning seeds | mean ± std |")
    print("|---|---|---|---|---|")
    seeds = {side: [pretraining_seed(m) for m in ms] for side, ms in groups.items()}
    for side, ss in seeds.items():
        if len(set(ss)) < len(ss):
            sys.exit(f"lever: two {side} runs have one pretraining seed ({', '.join(groups[side])}): give one run "
                     "per seed, named <objective><tag>[-s<S>]+<fine-tuning tag>")
    for n in sizes:
        means, by_seed = {}, {}
        for side, ms in groups.items():
            means[side], by_seed[side] = [], {}
            for m in ms:
                v = table[m].get(n)
                if not v:
                    continue
                mean, sd, _, _ = stats(v)
                means[side].append(mean)
                by_seed[side][pretraining_seed(m)] = mean
                print(f"| {n} | {side.lower()} | {m} | {', '.join(f'{a:.2f}' for a in v)} | {mean:.2f} ± {sd:.2f} |")
            if means[side]:
                mean, sd, _, _ = stats(means[side])
                print(f"| {n} | {side.lower()} | mean of {len(means[side])} pretraining run(s) | | **{mean:.2f}**"
                      + (f" ± {sd:.2f} |" if len(means[side]) > 1 else " |"))
        b, l = means["BASE"], means["LEVER"]
        if not b or not l:
            print(f"| {n} | lever - base | | | – (a side has no run at this size) |")
            continue
        change = statistics.mean(l) - statistics.mean(b)
        if len(b) > 1 and len(l) > 1:
            se = (stats(b)[1] ** 2 / len(b) + stats(l)[1] ** 2 / len(l)) ** 0.5
            z = f", {change / se:+.1f} SE" if se > 0 else ""
            print(f"| {n} | lever - base | | | **{change:+.2f}** ± {se:.2f} (SE over {len(b)} + {len(l)} "
                  f"pretraining runs{z}) |")
            common = sorted(set(by_seed["BASE"]) & set(by_seed["LEVER"]))
            if len(common) > 1:  # a run and its baseline of one pretraining seed: the same data order and masks
                d = [by_seed["LEVER"][k] - by_seed["BASE"][k] for k in common]
                sd = stats(d)[1] / len(d) ** 0.5
                z = f", {statistics.mean(d) / sd:+.1f} SE on {len(d) - 1} degree(s) of freedom" if sd > 0 else ""
                print(f"| {n} | lever - base, paired by pretraining seed ({', '.join(map(str, common))}) | | "
                      f"{', '.join(f'{x:+.2f}' for x in d)} | {statistics.mean(d):+.2f} ± {sd:.2f}{z} |")
        else:
            print(f"| {n} | lever - base | | | **{change:+.2f}** (one pretraining run on a side: no standard error "
                  "over pretraining runs) |")


# What a config.json key that an older selfsup did not write means (src/model/config.c).
CONFIG_ABSENT = {"bias": True}


def recipe(run):
    """A pretraining run's recipe: its model settings and training options, without the seed. An
    option the run's selfsup did not have yet is None (unrecorded: its value then is the one
    src/train/optable.c's added_later table gives, which this script does not repeat)."""
    try:
        with open(os.path.join(run, "config.json")) as f:
            config = json.load(f)
        with open(os.path.join(run, "trainer_state.json")) as f:
            options = json.load(f)["options"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{run}: not a finished or resumable pretraining run ({e})")
    both = {f"config.{k}": v for k, v in {**CONFIG_ABSENT, **config}.items()}
    both.update({f"options.{k}": v for k, v in options.items() if k != "seed"})
    return both


def recipe_diff(run_a, run_b):
    a, b = recipe(run_a), recipe(run_b)
    shown = lambda v: "(unrecorded)" if v is None else json.dumps(v)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            print(f"{key}: {shown(a.get(key))} -> {shown(b.get(key))}")


def spread(paths):
    import numpy as np  # only this mode needs it

    print("| vectors | n | mean pairwise cosine | spread / norm | top PC share | effective rank |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        x = np.load(path).astype(np.float64)
        if x.ndim != 2 or len(x) < 2:
            sys.exit(f"{path}: not a matrix of at least 2 vectors")
        norms = np.linalg.norm(x, axis=1)
        unit = x / np.maximum(norms, 1e-30)[:, None]
        n = len(x)
        cos = (np.square(unit.sum(0)).sum() - n) / (n * (n - 1))  # the mean of u_i . u_j over i != j
        centred = x - x.mean(0)
        sv = np.linalg.svd(centred, compute_uv=False)
        share = np.square(sv) / max(np.square(sv).sum(), 1e-300)
        nz = share[share > 0]
        rank = float(np.exp(-(nz * np.log(nz)).sum()))
        rel = np.linalg.norm(centred, axis=1).mean() / norms.mean()
        print(f"| {os.path.basename(path)} | {n} | {cos:.4f} | {rel:.4f} | {share[0]:.3f} | {rank:.1f} |")


if __name__ == "__main__":
    modes = {"sst2": (3, 3), "label_eff": (3, None), "imdb": (3, 3), "best": (3, None), "curve": (6, None), "plot": (4, 6),
             "spread": (3, None), "selftrain": (4, 4), "lever": (7, 7),
             "recipe-diff": (4, 4)}
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    lo, hi = modes.get(mode, (None, None))
    if lo is None or len(sys.argv) < lo or (hi is not None and len(sys.argv) > hi):
        sys.exit(__doc__)
    if mode == "sst2":
        sst2(sys.argv[2])
    elif mode == "label_eff":
        label_eff(*sys.argv[2:])
    elif mode == "imdb":
        imdb(sys.argv[2])
    elif mode == "best":
        best(sys.argv[2], sys.argv[3:])
    elif mode == "curve":
        curve(*sys.argv[2:])
    elif mode == "spread":
        spread(sys.argv[2:])
    elif mode == "selftrain":
        selftrain(sys.argv[2], sys.argv[3])
    elif mode == "lever":
        lever(*sys.argv[2:])
    elif mode == "recipe-diff":
        recipe_diff(sys.argv[2], sys.argv[3])
    else:
        plot(read_curves(sys.argv[2]), *sys.argv[3:])
