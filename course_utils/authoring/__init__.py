"""Instructor tooling: exercises generated from solution notebooks, and solution runs.

``markers`` holds the one table of solution markers; ``transforms`` the pure notebook transforms;
``build`` writes ``exercises/`` from ``solutions/``; ``solutions`` executes the solutions and grades them.
"""
from .build import BuildReport, build_exercises
from .markers import MARKERS, MarkerError, clear_source
from .solutions import run_solutions
from .transforms import TRANSFORMS, to_exercise

__all__ = ["BuildReport", "build_exercises", "MARKERS", "MarkerError", "clear_source", "run_solutions",
           "TRANSFORMS", "to_exercise"]
