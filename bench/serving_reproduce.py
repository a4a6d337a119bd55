"""Reproduce the GPULet paper's Fig. 13 shape and regenerate the table in docs/serving.md.

    .venv/bin/python bench/serving_reproduce.py            # prints the table
    .venv/bin/python bench/serving_reproduce.py --write-docs  # also rewrites the block in docs/serving.md

Reads ../shared/data/gpulet (or $GPUFLEET_SHARED/data/gpulet). Each figure is a ratio of two planners'
highest sustained request rates measured in the same run (<= 1 % SLO violations in the simulator).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from gpufleet.serving.errors import ServingError
from gpufleet.serving.reference import (paper_facts, paper_scenarios, reference_interference,
                                        reference_profiles, with_lenet_copies)
from gpufleet.serving.reproduce import (GREEDY_BASELINE, PAPER_PLANNERS, SBP_BASELINE, ratio_summary,
                                        reproduce)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "serving.md"
BEGIN, END = "<!-- reproduction:begin -->", "<!-- reproduction:end -->"


def fmt(x: float | None) -> str:
    return "no ratio (baseline 0)" if x is None else f"{x:.2f}"


def mean_cell(rows, base: str, placed: bool) -> str:
    mean, left_out = ratio_summary(rows, "gpulet+int", base, placed)
    text = "none" if mean is None else f"**{mean:.2f}**"
    return text + (f" (without {', '.join(left_out)})" if left_out else "")


def table(rows, facts, args) -> str:
    fig13 = facts["fig13_slo_preserved_max_throughput_rps_APPROX"]
    sbp, greedy = SBP_BASELINE, GREEDY_BASELINE
    lines = [f"Command: `.venv/bin/python bench/serving_reproduce.py --write-docs` ({args.gpus} GPUs, "
             f"{args.duration:g} s simulated per point, seed {args.seed}; {args.elapsed:.0f} s on 2 cores). "
             "Each cell: highest sustained total req/s (<= 1 % SLO violations at it and every lower grid rate), "
             "in brackets the highest rate the planner places at all; 0 = fails at 100 req/s. "
             f"SBP = `{sbp}` and greedy = `{greedy}` (glet's own baseline configurations, as the paper ran "
             "them); Nexus's `sbp` and our `greedy` for reference.", "",
             "| scenario | gpulet+int | gpulet | SBP | greedy | Nexus sbp | our greedy | gpulet+int / SBP | "
             "gpulet+int / greedy | placed: / SBP | placed: / greedy | paper / SBP | paper / greedy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = fig13.get(r.scenario, {})
        paper_sbp = p["gpulet+int"] / p["SBP"] if p else float("nan")
        paper_greedy = p["gpulet+int"] / p["greedy_best_fit"] if p else float("nan")
        cells = " | ".join(f"{r.rates[k]:.0f} ({r.placed[k]:.0f})" for k in PAPER_PLANNERS)
        lines.append(f"| {r.scenario} | {cells} | {fmt(r.ratio('gpulet+int', sbp))} | "
                     f"{fmt(r.ratio('gpulet+int', greedy))} | {fmt(r.ratio('gpulet+int', sbp, True))} | "
                     f"{fmt(r.ratio('gpulet+int', greedy, True))} | {paper_sbp:.2f} | {paper_greedy:.2f} |")
    lines.append(f"| **geometric mean** | | | | | | | {mean_cell(rows, sbp, False)} | {mean_cell(rows, greedy, False)} | "
                 f"{mean_cell(rows, sbp, True)} | {mean_cell(rows, greedy, True)} | 1.6 (paper) | 1.8 (paper) |")
    lines.append("")
    lines.append("A baseline that sustains nothing has no ratio; the geometric mean is taken over the other "
                 "scenarios and names the ones it leaves out.")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=4)
    ap.add_argument("--duration", type=float, default=5.0, help="simulated seconds per point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", default="", help="comma-separated subset (default all)")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    try:
        profiles, interference = reference_profiles(), reference_interference()
        facts = paper_facts()
    except ServingError as exc:
        print(f"serving_reproduce: {exc}", file=sys.stderr)
        return 2
    profiles = with_lenet_copies(profiles, interference)
    scenarios = paper_scenarios()
    if args.scenarios:
        scenarios = {k: v for k, v in scenarios.items() if k in args.scenarios.split(",")}
    t0 = time.time()
    rows = reproduce(scenarios, profiles, interference, max_gpus=args.gpus, duration_s=args.duration,
                     seed=args.seed, progress=lambda s, p, r: print(f"  {s:8s} {p:16s} {r:8.0f} req/s", file=sys.stderr))
    args.elapsed = time.time() - t0
    text = table(rows, facts, args)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps([{"scenario": r.scenario, "sustained": r.rates, "placed": r.placed}
                                               for r in rows], indent=2))
    if args.write_docs:
        doc = DOCS.read_text()
        if BEGIN not in doc or END not in doc:
            print(f"serving_reproduce: {DOCS} has no {BEGIN} ... {END} block", file=sys.stderr)
            return 2
        head, rest = doc.split(BEGIN, 1)
        DOCS.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
