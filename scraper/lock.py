"""One writer per catalog folder: an exclusive ``flock`` on ``<catalog>/.lock``.

The kernel releases the lock when the process ends, however it ends (``kill -9``
included), so a killed crawl never leaves a stale lock behind; the file itself may stay.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from scraper import ScraperError

LOCK_FILE = ".lock"


class FolderLock:
    """Hold the folder's lock until :meth:`release` (or process exit)."""

    def __init__(self, folder: Path, what: str = "crawl") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / LOCK_FILE
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(self._fd)
            self._fd = None
            by = f" ({holder})" if holder else ""
            raise ScraperError(f"{folder} is being written by another crawl or import{by}; "
                               "wait for it to finish or choose another --out") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{what}, pid {os.getpid()}".encode(), 0)

    def release(self) -> None:
        """Let the next writer in."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
