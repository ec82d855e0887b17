#!/usr/bin/env python3
"""Latency against throughput, from cafe-bench results.

Reads JSON results, one cafe-bench `--json` object a line (as
scripts/bench-latency.sh and scripts/bench-compare.sh write them, with
`label` naming the server and `phase` the kind of run), and draws, for each
label, p50, p99 and p99.9 latency (log scale) against achieved throughput
over its open-loop runs (`phase` "sweep", or any run with `mode` "open"
when no phase is given). A closed-loop maximum (`phase` "max" or "max8")
shows as a dotted vertical line in the label's colour.

Needs matplotlib (pip install matplotlib); without it, says so and exits 3.

usage: plot_latency.py RESULTS.jsonl [...] [--out PNG] [--title TEXT]
                       [--percentiles p50,p99,p999]
"""
import argparse
import json
import sys

PERCENTILES = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9", "p9999": "p99.99", "max": "max"}
STYLES = ["-", "--", ":", "-.", (0, (1, 1)), (0, (5, 1))]
MARKERS = ["o", "s", "^", "D", "v", "x"]


def load(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    runs.append(json.loads(line))
                except ValueError as e:
                    sys.exit(f"{path}:{n}: not JSON: {e}")
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="JSON lines files")
    ap.add_argument("--out", default="bench-latency.png", help="PNG to write")
    ap.add_argument("--title", default="latency against throughput")
    ap.add_argument("--percentiles", default="p50,p99,p999",
                    help="comma-separated, of " + ",".join(PERCENTILES))
    args = ap.parse_args()
    wanted = [p.strip() for p in args.percentiles.split(",") if p.strip()]
    bad = [p for p in wanted if p not in PERCENTILES]
    if bad or not wanted:
        sys.exit(f"--percentiles: unknown {bad}; known: {', '.join(PERCENTILES)}")
    runs = load(args.results)
    try:
        import matplotlib
    except ImportError:
        print("plot_latency.py: no matplotlib (pip install matplotlib); no chart drawn", file=sys.stderr)
        sys.exit(3)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = []
    for r in runs:
        label = r.get("label", "cafe")
        if label not in labels:
            labels.append(label)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    drawn = 0
    for li, label in enumerate(labels):
        colour = colours[li % len(colours)]
        mine = [r for r in runs if r.get("label", "cafe") == label]
        sweep = [r for r in mine if r.get("phase", "sweep" if r.get("mode") == "open" else "") == "sweep"]
        sweep.sort(key=lambda r: r.get("offered_rate") or r.get("rate") or r["throughput"])
        xs = [r["throughput"] / 1000 for r in sweep]
        for pi, p in enumerate(wanted):
            ys = [r["latency_us"][p] for r in sweep]
            if not xs:
                continue
            ax.plot(xs, ys, linestyle=STYLES[pi % len(STYLES)], marker=MARKERS[pi % len(MARKERS)],
                    markersize=4, color=colour, label=f"{label} {PERCENTILES[p]}")
            drawn += 1
        for r in mine:
            if r.get("phase") in ("max", "max8"):  # the closed-loop maximum the sweep is scaled to
                ax.axvline(r["throughput"] / 1000, color=colour, linestyle=":", linewidth=1, alpha=0.7)
                ax.annotate(f"{label} max, pipeline {r.get('pipeline')}", (r["throughput"] / 1000, 0),
                            xycoords=("data", "axes fraction"), xytext=(-3, 3), textcoords="offset points",
                            rotation=90, ha="right", va="bottom", fontsize=7, color=colour)
    if not drawn:
        sys.exit("plot_latency.py: no open-loop runs to draw")
    ax.set_yscale("log")
    ax.set_xlabel("achieved throughput (thousand requests/s)")
    ax.set_ylabel("latency (µs, log scale)")
    ax.set_title(args.title, fontsize=10)
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.15)
    ax.set_xlim(left=0)
    ax.legend(fontsize=8, ncol=max(1, len(labels)), loc="best")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"plot_latency.py: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
