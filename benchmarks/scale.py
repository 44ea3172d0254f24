"""How the plugin's cost grows with the work: the worker benchmark at several loads.

Run with ``nox -s bench -- scale`` (about twenty minutes on two cores). At each point
(workflows in flight x payload size) it alternates the bare and full variants of
``worker.py``, each in a fresh process with its own dev server, for ``--rounds`` rounds,
and takes the medians. It prints a table of full/bare ratios and CPU per workflow, and
with ``--write`` replaces the table between the markers of ``docs/performance.md`` and
draws ``docs/performance/scale.png``, so that a reader sees the figures of one run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from worker import VARIANTS, Measurement, median, spawn
from worker import parse as parse_worker

CONCURRENCIES = (10, 50, 200)
PAYLOADS = (1024, 64 * 1024)
WORKFLOWS = {1024: 300, 64 * 1024: 150}
"""Measured workflows per round, by payload size: fewer where each moves 128 KiB."""
DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = DOCS / "performance.md"
CHART = DOCS / "performance" / "scale.png"
START, END = "<!-- scale:start -->", "<!-- scale:end -->"


@dataclass(frozen=True)
class Point:
    """The medians of both variants at one load."""

    concurrency: int
    payload_bytes: int
    workflows: int
    bare: Measurement
    full: Measurement

    @property
    def cpu_ratio(self) -> float:
        """CPU per workflow, full over bare."""
        return self.full.cpu_seconds / self.bare.cpu_seconds

    @property
    def throughput_ratio(self) -> float:
        """Workflows per second, full over bare."""
        return self.full.throughput / self.bare.throughput

    def cpu_ms(self, row: Measurement) -> float:
        """CPU milliseconds per workflow of ``row``."""
        return row.cpu_seconds / self.workflows * 1e3


def measure(concurrency: int, payload_bytes: int, rounds: int) -> Point:
    """Alternate the variants ``rounds`` times at one load; the medians."""
    workflows = WORKFLOWS[payload_bytes]
    arguments = parse_worker(
        [
            f"--workflows={workflows}",
            f"--concurrency={concurrency}",
            f"--payload-bytes={payload_bytes}",
        ]
    )
    runs: dict[str, list[Measurement]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            runs[variant].append(spawn(variant, arguments))
    bare, full = (median(runs[variant], variant) for variant in VARIANTS)
    return Point(concurrency, payload_bytes, workflows, bare, full)


def table(points: Sequence[Point]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| In flight | Payload | Workflows | CPU/wf bare | CPU/wf full | CPU full/bare "
        "| wf/s bare | wf/s full | Throughput full/bare | Peak RSS full - bare |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {point.concurrency} | {point.payload_bytes // 1024} KiB | {point.workflows} "
        f"| {point.cpu_ms(point.bare):.1f} ms | {point.cpu_ms(point.full):.1f} ms "
        f"| {point.cpu_ratio:.2f} | {point.bare.throughput:.1f} | {point.full.throughput:.1f} "
        f"| {point.throughput_ratio:.2f} | {point.full.rss_mib - point.bare.rss_mib:+.1f} MiB |"
        for point in points
    ]
    return "\n".join(lines)


def draw(points: Sequence[Point], path: Path) -> None:
    """Two panels: CPU per workflow of each variant, and full/bare, against load."""
    import matplotlib  # noqa: PLC0415  (only the bench session installs it)

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    figure, (absolute, ratio) = pyplot.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for payload_bytes, style in zip(PAYLOADS, ("o-", "s--"), strict=True):
        row = [point for point in points if point.payload_bytes == payload_bytes]
        loads = [point.concurrency for point in row]
        label = f"{payload_bytes // 1024} KiB"
        absolute.plot(loads, [p.cpu_ms(p.bare) for p in row], style, label=f"bare, {label}")
        absolute.plot(loads, [p.cpu_ms(p.full) for p in row], style, label=f"full, {label}")
        ratio.plot(loads, [p.cpu_ratio for p in row], style, label=f"CPU, {label}")
        ratio.plot(loads, [p.throughput_ratio for p in row], style, label=f"wf/s, {label}")
    absolute.set(xscale="log", xlabel="workflows in flight", ylabel="CPU ms per workflow")
    absolute.set_title("CPU per workflow")
    ratio.axhline(1.0, color="grey", linewidth=0.8)
    ratio.set(xscale="log", xlabel="workflows in flight", ylabel="full / bare")
    ratio.set_title("ShadowPlugin over plain temporalio")
    for axes in (absolute, ratio):
        axes.set_xticks(list(CONCURRENCIES), [str(load) for load in CONCURRENCIES])
        axes.minorticks_off()
        axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def write_page(points: Sequence[Point], rounds: int) -> None:
    """Replace the figures between the page's markers with this run's."""
    measured = (
        f"Measured {datetime.date.today().isoformat()} with `nox -s bench -- scale "
        f"--write` on {os.cpu_count()} cores ({platform.python_implementation()} "
        f"{platform.python_version()}), median of {rounds} rounds per point; load average "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
    chart = "![CPU per workflow and ratios against load](performance/scale.png)"
    block = f"{START}\n{measured}\n\n{table(points)}\n\n{chart}\n{END}"
    text = PAGE.read_text(encoding="utf-8")
    PAGE.write_text(
        re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S),
        encoding="utf-8",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every point, print the table; with ``--write``, update the page and chart."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="of each variant per point")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    arguments = parser.parse_args(argv)
    points = []
    for payload_bytes in PAYLOADS:
        for concurrency in CONCURRENCIES:
            point = measure(concurrency, payload_bytes, arguments.rounds)
            print(
                f"{concurrency:>4} in flight, {payload_bytes // 1024:>2} KiB: CPU full/bare "
                f"{point.cpu_ratio:.2f}, throughput {point.throughput_ratio:.2f}",
                flush=True,
            )
            points.append(point)
    print(table(points))
    if arguments.write:
        write_page(points, arguments.rounds)
        draw(points, CHART)
        print(f"wrote {PAGE.relative_to(DOCS.parent)} and {CHART.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
