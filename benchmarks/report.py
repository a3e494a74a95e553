"""Turns a pytest-benchmark JSON file into the ratio table of benchmarks/RESULTS.md.

Usage: python benchmarks/report.py benchmarks/results.json [--out benchmarks/RESULTS.md]
Ratios are medians of the other ways over the native kernel's median, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict

import torch


def ratio_table(results: dict) -> str:
    medians: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in results["benchmarks"]:
        medians[bench["group"]][bench["name"]] = bench["stats"]["median"]
    ways = sorted({w for group in medians.values() for w in group if w != "native"})
    lines = ["| workload | " + " | ".join(f"{w} / native" for w in ways) + " |",
             "|---|" + "---:|" * len(ways)]
    for group, by_way in sorted(medians.items()):
        native = by_way.get("native")
        cells = [f"{by_way[w] / native:,.1f}×" if native and w in by_way else "–" for w in ways]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    args = parser.parse_args()
    with open(args.results) as f:
        results = json.load(f)
    info = results.get("machine_info", {})
    print(f"Machine: {info.get('cpu', {}).get('brand_raw', platform.processor())}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"run {results.get('datetime', '?')}\n")
    print(ratio_table(results))


if __name__ == "__main__":
    main()
