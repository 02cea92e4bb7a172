"""The one error a spec raises, whatever went wrong: every problem, one line each."""

from __future__ import annotations


class SpecError(ValueError):
    """Every problem of one or more specs, reported at once; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid environment spec:\n  " + "\n  ".join(problems) if len(problems) > 1 else problems[0])
