"""The one exception type for bad user input.

Every layer (TOML loading, the views, the CLI, the sweepers) raises
:class:`SpaceError` for mistakes a user can fix, so that front ends can print
one clear line instead of a traceback.
"""

from __future__ import annotations

from typing import Optional


class SpaceError(ValueError):
    """A parameter space (file or code) that cannot be used as written.

    The message names where the problem is (file, parameter) and what is
    allowed, so a user can fix the input without reading our source.
    """

    def __init__(self, problem: str, *, param: Optional[str] = None, source: Optional[str] = None):
        self.problem = problem
        self.param = param
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.param:
            where.append(f"parameter '{self.param}'")
        return ": ".join(where + [self.problem])

    def located(self, source: Optional[str]) -> "SpaceError":
        """The same error, attributed to ``source`` (a file path) if it has none yet."""
        if self.source or not source:
            return self
        return SpaceError(self.problem, param=self.param, source=source)
