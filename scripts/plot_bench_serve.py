#!/usr/bin/python3
"""Plots a `lattice bench-serve` JSON file: TTFT and inter-token latency distributions, end-to-end latency
over the run, and the end-to-end latency CDF with p50/p90/p99 marked.
(Debian's /usr/bin/python3, where python3-matplotlib is installed.)
usage: plot_bench_serve.py bench-serve.json [out.png]"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    path = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else path.rsplit(".", 1)[0] + ".png"
    with open(path) as f:
        data = json.load(f)
    s, reqs = data["summary"], [r for r in data["requests"] if r["error"] is None]
    if not reqs:
        sys.exit(f"{path}: no successful requests to plot")
    ms = lambda xs: [1000 * x for x in xs]  # noqa: E731
    ttft = ms([r["ttft"] for r in reqs if r["ttft"] is not None])
    itl = ms([g for r in reqs for g in r["itl"]])
    e2e = ms([r["e2e"] for r in reqs])

    fig, ax = plt.subplots(2, 2, figsize=(12, 8))
    fig.suptitle(f"lattice bench-serve: {s['model']}, {s['requests']} requests at {s['rate']}/s, "
                 f"in {s['input_len']} / out {s['output_len']} tokens\n"
                 f"{s['request_throughput']:.2f} req/s, {s['output_token_throughput']:.0f} output tok/s, "
                 f"{s['failed']} failed")
    for a, values, title in ((ax[0][0], ttft, "time to first token (ms)"), (ax[0][1], itl, "inter-token latency (ms)")):
        if values:
            a.hist(values, bins=40, color="tab:blue")
        else:
            a.text(0.5, 0.5, "not measured (run with --stream)", ha="center", va="center", transform=a.transAxes)
        a.set_title(title)
        a.set_ylabel("count")
    ax[1][0].scatter([r["start"] for r in reqs], e2e, s=8)
    ax[1][0].set_title("end-to-end latency by arrival time")
    ax[1][0].set_xlabel("arrival (s)")
    ax[1][0].set_ylabel("ms")
    xs = sorted(e2e)
    ax[1][1].plot(xs, [(i + 1) / len(xs) for i in range(len(xs))])
    for p in ("p50", "p90", "p99"):
        v = 1000 * s["e2e_s"][p]
        ax[1][1].axvline(v, linestyle="--", color="gray")
        ax[1][1].text(v, 0.05, p, rotation=90)
    ax[1][1].set_title("end-to-end latency CDF")
    ax[1][1].set_xlabel("ms")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
