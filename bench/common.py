"""Shared helpers of the benchmark suite: statistics, tables, bars, machine facts.

Every section returns a plain dict (JSON-serialisable) with at least

* ``tables``: ``[{"title", "headers", "rows", "note"?}]`` -- what is printed;
* ``bars``: ``[{"bar", "target", "value", "unit", "met", "note"}]`` -- the issue's bars;
* ``figures``: free-form numbers for the JSON.
"""
from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
BENCH = os.path.dirname(os.path.abspath(__file__))
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)


def pct(xs, q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    s = sorted(xs)
    if not s:
        return math.nan
    i = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[i]


def summary(xs) -> dict:
    xs = list(xs)
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "mean": statistics.fmean(xs),
        "p50": pct(xs, 50),
        "p95": pct(xs, 95),
        "p99": pct(xs, 99),
        "max": max(xs),
        "min": min(xs),
    }


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        if math.isinf(x):
            return "inf"
        a = abs(x)
        if a >= 1000:
            return f"{x:,.0f}"
        if a >= 100:
            return f"{x:.1f}"
        return f"{x:.{digits}f}"
    return str(x)


def table(title: str, headers, rows, note: str | None = None) -> dict:
    t = {"title": title, "headers": list(headers), "rows": [list(r) for r in rows]}
    if note:
        t["note"] = note
    return t


def render_table(t: dict) -> str:
    cells = [[fmt(c) for c in r] for r in t["rows"]]
    heads = [str(h) for h in t["headers"]]
    widths = [len(h) for h in heads]
    for r in cells:
        for i, c in enumerate(r):
            if i < len(widths):
                widths[i] = max(widths[i], len(c))
    lines = [f"-- {t['title']}"]
    lines.append("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(heads, widths))))
    for r in cells:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    if t.get("note"):
        lines.append(f"   note: {t['note']}")
    return "\n".join(lines)


def bar(name: str, value, target, unit: str = "", *, higher_is_better: bool = False, note: str = "") -> dict:
    """A bar of the issue: met iff value <= target (or >= with higher_is_better)."""
    if value is None or target is None or (isinstance(value, float) and math.isnan(value)) or (
            isinstance(target, float) and math.isnan(target)):
        met = None
    else:
        met = value >= target if higher_is_better else value <= target
    op = ">=" if higher_is_better else "<="
    tgt = f"{op} {fmt(target) if isinstance(target, float) else target}{unit}"
    return {"bar": name, "target": tgt, "value": value, "unit": unit, "met": met, "note": note,
            "margin": None if met is None else (value / target if target else None)}


def _fmt_unused():  # keep fmt importable before its definition order matters
    return fmt


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import networkx

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "loadavg": load,
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "networkx": networkx.__version__,
        "platform": platform.platform(),
    }


@contextmanager
def timer(into: dict, key: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - t0


def best_of(f, reps: int = 3):
    """(best wall time, last result) of `reps` calls."""
    best = math.inf
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out
