"""A text progress bar on stderr, for model fits (``verbose=True``) and the demo.

On a terminal the bar redraws itself on one line; otherwise (a log file, a pipe, a test's
captured stream) every update is its own line, so that nothing is lost.
"""

from __future__ import annotations

import sys
import time


def bar(done: int, total: int, width: int = 30) -> str:
    """``[#########---------]``: ``done`` of ``total`` as ``width`` characters."""
    filled = width if total <= 0 else int(width * min(done, total) / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class Progress:
    """``update(done, message)`` draws ``[###---] done/total message  elapsed s``."""

    def __init__(self, total: int, *, stream=None, unit: str = ""):
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.unit = unit
        self.started = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def update(self, done: int, message: str = "") -> None:
        unit = f"{self.unit} " if self.unit else ""
        line = (f"{bar(done, self.total)} {unit}{done}/{self.total}"
                + (f"  {message}" if message else "") + f"  {self.elapsed():.2f} s")
        if self.tty:
            # \x1b[K clears what a longer previous line left on the right.
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if done >= self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
