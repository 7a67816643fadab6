"""Check results: plain dataclasses with three renderings (HTML for Jupyter, text, dict for JSON).

Deterministic by design: no timestamps, no randomness, the same input gives the same bytes.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

PASSED, FAILED, NOT_IMPLEMENTED, ERROR, TIMEOUT, MISSING, FORBIDDEN, NOT_RUN = (
    "passed",
    "failed",
    "not implemented yet",
    "error",
    "timeout",
    "missing",
    "library call",  # a "from scratch" answer called the library operation it was to write
    "not run",  # skipped: an earlier case of the question timed out
)


FIX_FIRST = "Fix this first: the other cases can only judge your answer once it is fixed."


@dataclass
class CaseOutcome:
    """One case of a question: did the learner's answer pass it, and if not, why.

    ``kind`` is the case's kind in the registry ("core", "mistake" or "property"); only core cases
    earn credit. ``basic`` marks a failure that is not the mistake the case looks for (the answer
    crashed, returned None, or has the wrong type or shape): its hint is not shown then.
    """

    name: str
    passed: bool
    message: str = ""
    hint: str = ""
    status: str = PASSED  # one of PASSED, FAILED, NOT_IMPLEMENTED, ERROR, TIMEOUT, MISSING
    kind: str = "core"
    basic: bool = False
    problem: str = ""  # of a basic failure: "none", "shape", "type", "crash: ...", "timeout", ...

    @property
    def shows_hint(self) -> bool:
        """A hint names the case's own mistake: shown unless the failure is a more basic one (a
        property case's hint stays for the wrong shape or type it is about)."""
        if not self.hint or self.passed:
            return False
        return not self.basic or (self.kind == "property" and self.problem in ("shape", "type"))

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "status": self.status, "kind": self.kind,
                "basic": self.basic, "problem": self.problem, "message": self.message, "hint": self.hint}


def _problem(message: str) -> str:
    """A failure message without its "Called:" line: two cases with the same problem say the same."""
    return "\n".join(line for line in message.splitlines() if not line.startswith("Called:"))


@dataclass
class QuestionResult:
    """The result of ``check(qid, ...)``: every case, the score and how to show it."""

    qid: str
    title: str
    cases: list[CaseOutcome] = field(default_factory=list)
    points: float = 1.0
    note: str = ""  # a question-level message (never answered, wrong arguments, ...)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def not_implemented(self) -> bool:
        return any(c.status == NOT_IMPLEMENTED for c in self.cases)

    @property
    def score(self) -> float:
        """The credit rule: points x (core cases passed / core cases), halved if a case of another
        kind (a mistake detector, a property) fails. No core case passed, no credit."""
        core = [c for c in self.cases if c.kind == "core"]
        if not core or any(c.status == FORBIDDEN for c in self.cases):
            return 0.0
        earned = float(self.points) * sum(c.passed for c in core) / len(core)
        if any(not c.passed for c in self.cases if c.kind != "core"):
            earned /= 2
        return round(earned, 4)

    @property
    def possible(self) -> float:
        return float(self.points)

    def first_problem(self) -> str:
        """The first thing the learner should read: the note, else the first failing case's message."""
        if self.note:
            return self.note.splitlines()[0]
        for c in self.cases:
            if not c.passed:
                lines = _problem(c.message).splitlines()
                return f"{c.name}: {lines[0] if lines else c.status}"
        return ""

    def _shown(self) -> list[tuple[CaseOutcome, str, str]]:
        """(case, message to show, hint to show) for every case, with repeated basic problems folded."""
        shown, seen = [], {}
        failing = [c for c in self.cases if not c.passed]
        for c in self.cases:
            if c.passed:
                shown.append((c, "", ""))
                continue
            message = "" if c.message == self.note else c.message
            if c.basic and message and c.status != NOT_RUN:
                key = c.problem or _problem(message)
                if key in seen:
                    message = f"The same problem as in \"{seen[key]}\" above."
                else:
                    seen[key] = c.name
                    if c is failing[0] and len(failing) > 1:
                        message += "\n" + FIX_FIRST
            shown.append((c, message, c.hint if c.shows_hint else ""))
        return shown

    @property
    def status(self) -> str:
        if self.passed:
            return PASSED
        if self.not_implemented:
            return NOT_IMPLEMENTED
        if any(c.status == FORBIDDEN for c in self.cases):
            return FORBIDDEN
        if self.cases and all(c.status == MISSING for c in self.cases):
            return MISSING
        return FAILED

    def summary(self) -> str:
        n_pass = sum(c.passed for c in self.cases)
        word = {PASSED: "passed", NOT_IMPLEMENTED: "not implemented yet", MISSING: "not answered",
                FORBIDDEN: "not answered from scratch"}.get(
            self.status, "not yet")
        return f"{self.qid} {self.title}: {word} ({n_pass}/{len(self.cases)} cases, {self.score:g}/{self.possible:g} points)"

    def to_dict(self) -> dict:
        return {
            "id": self.qid,
            "title": self.title,
            "passed": self.passed,
            "status": self.status,
            "score": self.score,
            "possible": self.possible,
            "first_problem": self.first_problem(),
            "note": self.note,
            "cases": [c.to_dict() for c in self.cases],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "QuestionResult":
        cases = [CaseOutcome(c["name"], c["passed"], c.get("message", ""), c.get("hint", ""),
                             c.get("status", PASSED if c["passed"] else FAILED), c.get("kind", "core"),
                             bool(c.get("basic", False)), str(c.get("problem", ""))) for c in d.get("cases", [])]
        return cls(d["id"], d.get("title", ""), cases, float(d.get("possible", 1.0)), d.get("note", ""))

    def __str__(self) -> str:
        lines = [("PASS " if self.passed else "FAIL ") + self.summary()]
        if self.note:
            lines.append(f"  {self.note}")
        for c, message, hint in self._shown():
            mark = "ok  " if c.passed else ("todo" if c.status == NOT_IMPLEMENTED else "FAIL")
            lines.append(f"  [{mark}] {c.name}")
            for msg_line in message.splitlines():
                lines.append(f"         {msg_line}")
            if hint:
                lines.append(f"         Hint: {hint}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = {PASSED: "#1a7f37", NOT_IMPLEMENTED: "#9a6700"}.get(self.status, "#cf222e")
        icon = {PASSED: "&#10003;", NOT_IMPLEMENTED: "&#8230;"}.get(self.status, "&#10007;")
        out = [
            f'<div class="course-check course-check-{esc(self.status.replace(" ", "-"))}" '
            f'style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0;font-family:sans-serif">',
            f'<div style="font-weight:bold;color:{colour}">{icon} {esc(self.summary())}</div>',
        ]
        if self.note:
            out.append(f"<div>{esc(self.note)}</div>")
        out.append('<ul style="margin:4px 0 0 0">')
        for c, message, hint in self._shown():
            mark = "&#10003;" if c.passed else ("&#8230;" if c.status == NOT_IMPLEMENTED else "&#10007;")
            item = f"{mark} {esc(c.name)}"
            if message:
                item += f'<pre style="white-space:pre-wrap;margin:2px 0">{esc(message)}</pre>'
            if hint:
                item += f"<div><em>Hint:</em> {esc(hint)}</div>"
            out.append(f"<li>{item}</li>")
        out.append("</ul></div>")
        return "".join(out)
