"""``record``: a lab states its headline figure (test accuracy, val loss, size ratio) for the benchmark.

In a notebook it prints the figure; under ``course bench`` (which sets ``COURSE_RESULTS_FILE``) it is
also appended to that file, and ends up in ``benchmarks/results.json`` and the README's table.
"""
from __future__ import annotations

import json
import math
import os

RESULTS_FILE_ENV = "COURSE_RESULTS_FILE"


def record(name: str, value: float, unit: str = "", higher_is_better: bool | None = None) -> float:
    """Record a headline figure of this lab; returns ``value`` unchanged.

    Args:
        name: a stable snake_case name, e.g. ``"mnist_test_accuracy"``.
        value: a finite number.
        unit: e.g. ``"fraction"``, ``"s"``, ``"MB"``.
    Raises:
        ValueError: ``value`` is not a finite number or ``name`` is empty.
    Example:
        >>> record("mnist_test_accuracy", 0.981, unit="fraction")  # doctest: +SKIP
    """
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"record(): name must be snake_case letters and digits, got {name!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"record({name!r}, ...): value must be a finite number, got {value}")
    print(f"[record] {name} = {value:.6g}{(' ' + unit) if unit else ''}")
    path = os.environ.get(RESULTS_FILE_ENV)
    if path:
        entry = {"name": name, "value": value, "unit": unit, "higher_is_better": higher_is_better}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    return value


def read_recorded(path) -> dict:
    """The figures a run recorded, ``{name: {"value", "unit"}}``; a later record of a name wins."""
    figures = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        return figures
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        figures[entry["name"]] = {"value": entry["value"], "unit": entry.get("unit", "")}
    return figures
