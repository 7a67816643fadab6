"""Check results: plain dataclasses with three renderings (HTML for Jupyter, text, dict for JSON).

Deterministic by design: no timestamps, no randomness, the same input gives the same bytes.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

PASSED, FAILED, NOT_IMPLEMENTED, ERROR, TIMEOUT, MISSING = (
    "passed",
    "failed",
    "not implemented yet",
    "error",
    "timeout",
    "missing",
)


@dataclass
class CaseOutcome:
    """One case of a question: did the learner's answer pass it, and if not, why."""

    name: str
    passed: bool
    message: str = ""
    hint: str = ""
    status: str = PASSED  # one of PASSED, FAILED, NOT_IMPLEMENTED, ERROR, TIMEOUT, MISSING

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "status": self.status,
                "message": self.message, "hint": self.hint}


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
        """All-or-nothing per case: points x (cases passed / cases)."""
        if not self.cases:
            return 0.0
        return round(self.points * sum(c.passed for c in self.cases) / len(self.cases), 4)

    @property
    def possible(self) -> float:
        return self.points

    @property
    def status(self) -> str:
        if self.passed:
            return PASSED
        if self.not_implemented:
            return NOT_IMPLEMENTED
        if self.cases and all(c.status == MISSING for c in self.cases):
            return MISSING
        return FAILED

    def summary(self) -> str:
        n_pass = sum(c.passed for c in self.cases)
        word = {PASSED: "passed", NOT_IMPLEMENTED: "not implemented yet", MISSING: "not answered"}.get(
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
            "note": self.note,
            "cases": [c.to_dict() for c in self.cases],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "QuestionResult":
        cases = [CaseOutcome(c["name"], c["passed"], c.get("message", ""), c.get("hint", ""),
                             c.get("status", PASSED if c["passed"] else FAILED)) for c in d.get("cases", [])]
        return cls(d["id"], d.get("title", ""), cases, d.get("possible", 1.0), d.get("note", ""))

    def __str__(self) -> str:
        lines = [("PASS " if self.passed else "FAIL ") + self.summary()]
        if self.note:
            lines.append(f"  {self.note}")
        for c in self.cases:
            mark = "ok  " if c.passed else ("todo" if c.status == NOT_IMPLEMENTED else "FAIL")
            lines.append(f"  [{mark}] {c.name}")
            if not c.passed:
                for msg_line in ([] if c.message == self.note else c.message.splitlines()):
                    lines.append(f"         {msg_line}")
                if c.hint:
                    lines.append(f"         Hint: {c.hint}")
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
        for c in self.cases:
            mark = "&#10003;" if c.passed else ("&#8230;" if c.status == NOT_IMPLEMENTED else "&#10007;")
            item = f"{mark} {esc(c.name)}"
            if not c.passed:
                if c.message and c.message != self.note:
                    item += f'<pre style="white-space:pre-wrap;margin:2px 0">{esc(c.message)}</pre>'
                if c.hint:
                    item += f"<div><em>Hint:</em> {esc(c.hint)}</div>"
            out.append(f"<li>{item}</li>")
        out.append("</ul></div>")
        return "".join(out)
