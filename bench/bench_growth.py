"""Growth: the directory import, the daily sweep and the city dashboard (warm) timed at several city sizes,
each by its own benchmark script in its own process; the fitted exponent k of time ∝ firms^k (least squares
on log-log; k ≤ 1 means at most linear), and the curves drawn to docs/growth-sqlite.png (matplotlib, Agg).

    .venv/bin/python bench/bench_growth.py [--sizes 10000,100000,1000000] [--chart docs/growth-sqlite.png]
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# what to run at a size, and how to read its seconds from the script's report
MEASURES: dict[str, tuple[list[str], str, float]] = {
    "import (CSV → fresh SQLite)": (["bench_import.py", "--rows"], r"import \(fresh database\)\s+([\d.]+) s", 1.0),
    "daily sweep": (
        ["bench_sweep.py", "--backend", "sqlite", "--firms"],
        r"daily sweep \(the next day[^)]*\): ([\d.]+) s",
        1.0,
    ),
    "city dashboard, warm (median)": (
        ["bench_dashboard.py", "--runs", "5", "--firms"],
        r"city dashboard, warm \(history cached\)\s+([\d.]+)ms",
        0.001,
    ),
}


def fit(sizes: list[int], seconds: list[float]) -> float:
    xs, ys = [math.log(n) for n in sizes], [math.log(max(t, 1e-9)) for t in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def draw(chart: Path, sizes: list[int], results: dict[str, list[float]], *, title: str) -> None:
    """The curves on log-log axes with a linear reference from the first curve's first point."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no chart; `pip install -e '.[bench]'`)")
        return
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, seconds in results.items():
        axes.plot(sizes, seconds, marker="o", label=f"{label} (k = {fit(sizes, seconds):.2f})")
    reference = results[next(iter(results))]
    axes.plot(sizes, [reference[0] * n / sizes[0] for n in sizes], linestyle=":", color="grey", label="linear")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("firms")
    axes.set_ylabel("seconds")
    axes.set_title(title)
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    chart.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(chart, dpi=110)
    print(f"chart: {chart}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--chart", default=str(ROOT / "docs" / "growth-sqlite.png"), help="PNG path, or 'none'")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, list[float]] = {}
    for label, (argv, pattern, scale) in MEASURES.items():
        results[label] = []
        for n in sizes:
            done = subprocess.run(
                [sys.executable, str(ROOT / "bench" / argv[0]), *argv[1:], str(n)],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            found = re.search(pattern, done.stdout)
            if done.returncode or found is None:
                raise SystemExit(f"{label} at {n}: {done.stderr[-2000:] or done.stdout[-2000:]}")
            results[label].append(float(found.group(1)) * scale)
    print(f"firms: {', '.join(f'{n:,}' for n in sizes)}")
    print("| measure | " + " | ".join(f"{n:,}" for n in sizes) + " | fitted exponent k |")
    print("|---|" + "---|" * len(sizes) + "---|")
    for label, seconds in results.items():
        cells = " | ".join(f"{t:.3f} s" for t in seconds)
        print(f"| {label} | {cells} | {fit(sizes, seconds):.2f} |")
    if args.chart == "none":
        return
    draw(Path(args.chart), sizes, results, title="Dabiao: time against city size (log-log)")


if __name__ == "__main__":
    main()
