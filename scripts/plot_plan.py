#!/usr/bin/env python3
"""The throughput/latency frontier of a `lattice plan --json` result as a PNG.

usage: scripts/plot_plan.py PLAN.json OUT.png   (lattice plan --plot OUT.png runs it)
Each layout that fits is a point: time per output token (x) against output tokens/s of all replicas (y), labelled
tp x pp x dp and the batch; the layouts no other beats on both axes are joined (the frontier); the recommended one
is ringed.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    plan = json.load(open(sys.argv[1]))
    points = [l for l in plan["layouts"] if l["fits"]]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if points:
        xs = [l["tpot_ms"] for l in points]
        ys = [l["output_tokens_per_s"] for l in points]
        ax.scatter(xs, ys, color="tab:blue", zorder=3)
        for l in points:
            ax.annotate(f"tp{l['tp']} pp{l['pp']} dp{l['dp']}\nbatch {l['batch']}", (l["tpot_ms"], l["output_tokens_per_s"]),
                        textcoords="offset points", xytext=(5, 4), fontsize=7)
        frontier = sorted((l for l in points if not any(o["tpot_ms"] <= l["tpot_ms"] and
                                                       o["output_tokens_per_s"] > l["output_tokens_per_s"] or
                                                       o["tpot_ms"] < l["tpot_ms"] and
                                                       o["output_tokens_per_s"] >= l["output_tokens_per_s"]
                                                       for o in points)), key=lambda l: l["tpot_ms"])
        ax.plot([l["tpot_ms"] for l in frontier], [l["output_tokens_per_s"] for l in frontier], color="tab:orange",
                label="frontier", zorder=2)
        if plan["recommended"] >= 0:
            best = plan["layouts"][plan["recommended"]]
            ax.scatter([best["tpot_ms"]], [best["output_tokens_per_s"]], s=250, facecolors="none", edgecolors="red",
                       label=f"recommended ({plan['objective']})", zorder=4)
        ax.legend()
    unfit = len(plan["layouts"]) - len(points)
    ax.set_xlabel("time per output token (ms)")
    ax.set_ylabel("output tokens/s (all replicas)")
    ax.set_title(f"{plan['model']} on {plan['gpus']} x {plan['gpu']}, isl {plan['isl']} osl {plan['osl']}"
                 + (f" ({unfit} layouts do not fit)" if unfit else ""), fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
