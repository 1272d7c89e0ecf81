"""Reading a child process's output line by line with a deadline on every wait.

Iterating over ``proc.stdout`` blocks until a line or EOF comes, so a child that never prints
the expected line hangs the test instead of failing it. :class:`LineReader` pumps the pipe into
a queue on a daemon thread; :meth:`LineReader.wait_for` and :meth:`LineReader.rest` are bounded.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import IO

__all__ = ["LineReader"]


class LineReader:
    """Every line read from ``pipe`` (text mode), kept in :attr:`lines` as it arrives."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._eof = False
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: IO[str]) -> None:
        try:
            for line in pipe:
                self._queue.put(line)
        finally:
            self._queue.put(None)

    def _next(self, deadline: float) -> str | None:
        """The next line, None at EOF; TimeoutError past ``deadline`` (monotonic)."""
        if self._eof:
            return None
        try:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            self._eof = True
            return None
        self.lines.append(line)
        return line

    def wait_for(self, needle: str, timeout: float) -> str:
        """The first further line containing ``needle``; AssertionError at EOF or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._next(deadline)
            except TimeoutError:
                raise AssertionError(
                    f"no line with {needle!r} within {timeout}s; got {self.lines[-20:]!r}"
                ) from None
            if line is None:
                raise AssertionError(f"EOF before a line with {needle!r}; got {self.lines[-20:]!r}")
            if needle in line:
                return line

    def rest(self, timeout: float) -> str:
        """Everything up to EOF, from where the last wait stopped; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        start = len(self.lines)
        try:
            while self._next(deadline) is not None:
                pass
        except TimeoutError:
            raise AssertionError(f"no EOF within {timeout}s; got {self.lines[-20:]!r}") from None
        return "".join(self.lines[start:])
