#!/usr/bin/env python3
"""Prints the criterion medians of the last `cargo bench` run as a Markdown
table (the form docs/PERFORMANCE.md uses).

    cargo bench -p mc-bench && bench/summary.py [GROUP_PREFIX...]

Reads target/criterion/<group>/<bench>/new/estimates.json; with prefixes,
only the groups that start with one of them.
"""

import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
prefixes = tuple(sys.argv[1:])


def human(ns):
    if ns < 1_000:
        return f"{ns:.1f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


print("| group | benchmark | median | 95 % CI of the median |")
print("|---|---|---:|---:|")
for est in sorted(root.glob("*/*/new/estimates.json")):
    bench_dir = est.parent.parent
    group, bench = bench_dir.parent.name, bench_dir.name
    if prefixes and not group.startswith(prefixes):
        continue
    median = json.loads(est.read_text())["median"]
    ci = median["confidence_interval"]
    print(
        f"| {group} | {bench} | {human(median['point_estimate'])} | "
        f"{human(ci['lower_bound'])} – {human(ci['upper_bound'])} |"
    )
