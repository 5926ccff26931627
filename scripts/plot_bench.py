#!/usr/bin/python3
"""Plots `lattice bench --batch-sizes ... --json` output: output tokens/s and decode tokens/s against batch size
(log-log), with the share of the measured read bandwidth each decode run reached written beside its point.
Several files (e.g. with and without --no-cuda-graphs, or an HF baseline from scripts/bench-hf-baseline.py, whose
runs have "batch" and "output_tokens_per_s") draw one line each, labelled by file name.
(Debian's /usr/bin/python3, where python3-matplotlib is installed.)
usage: plot_bench.py bench.json [more.json ...] [-o out.png]   (default: the first file with .png)"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def runs_of(path):
    with open(path) as f:
        data = json.load(f)
    runs = data["runs"] if "runs" in data else [data]
    runs = sorted(runs, key=lambda r: r["batch"])
    if not runs:
        sys.exit(f"{path}: no runs to plot")
    return runs


def main():
    args = sys.argv[1:]
    out = None
    if "-o" in args:
        i = args.index("-o")
        if i + 1 >= len(args):
            sys.exit(__doc__)
        out = args[i + 1]
        del args[i : i + 2]
    if not args:
        sys.exit(__doc__)
    out = out or args[0].rsplit(".", 1)[0] + ".png"
    fig, ax = plt.subplots(figsize=(9, 6))
    for path in args:
        runs = runs_of(path)
        label = os.path.basename(path).rsplit(".", 1)[0]
        batches = [r["batch"] for r in runs]
        ax.plot(batches, [r["output_tokens_per_s"] for r in runs], "o-", label=f"{label}: output tok/s")
        if all("decode_tokens_per_s" in r for r in runs):
            ax.plot(batches, [r["decode_tokens_per_s"] for r in runs], "s--", label=f"{label}: decode tok/s")
            for r in runs:
                if "decode_vs_bandwidth" in r:
                    ax.annotate(f"{100 * r['decode_vs_bandwidth']:.0f}% BW", (r["batch"], r["decode_tokens_per_s"]),
                                textcoords="offset points", xytext=(4, -12), fontsize=8)
    all_batches = sorted({r["batch"] for path in args for r in runs_of(path)})
    ax.set_xscale("log")
    ax.set_xticks(all_batches, [str(b) for b in all_batches])
    first = runs_of(args[0])[0]
    title = f"{first.get('device', '?')}, {first.get('dtype', '?')}"
    if "input_len" in first:
        title += f", {first['input_len']} in / {first['output_len']} out"
    ax.set(yscale="log", xlabel="batch size (requests)", ylabel="tokens/s", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(out)


if __name__ == "__main__":
    main()
