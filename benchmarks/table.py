"""The side-by-side table the timing benchmarks print: median, min and the ratio to a base row."""

from __future__ import annotations

import statistics


def print_ratios(rows: dict[str, list[float]], *, header: str, base: str, ratio: str) -> None:
    """Print one line per row: median and min seconds, and ``base``'s median ÷ this one's."""
    base_median = statistics.median(rows[base])
    print(f"{header:34} {'median s':>9} {'min s':>7} {ratio:>13}")
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"{name:34} {median:9.3f} {min(values):7.3f} {base_median / median:12.1f}×")
