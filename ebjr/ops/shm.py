"""The Python backend's shared-memory regions in ``/dev/shm``, and removing the ones a dead
server left behind.

Each Python-backend model instance gets a ``triton_python_backend_shm_region_<uuid>`` file
that the server and the stub map. A server that exits cleanly removes its regions; one killed
hard (a crash, SIGKILL) leaves them, and in a container ``/dev/shm`` is small (64 MB by
default). A region is an orphan when no live process maps it.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
PREFIX = "triton_python_backend_shm_region_"


def region_names(shm_dir: Path = SHM_DIR) -> set[str]:
    """The names of the Python-backend regions in ``shm_dir`` now."""
    return {p.name for p in shm_dir.glob(PREFIX + "*")} if shm_dir.is_dir() else set()


def mapped_names(proc: Path = Path("/proc")) -> set[str]:
    """The Python-backend region names some live process maps (as far as this user may read
    other processes' maps)."""
    found: set[str] = set()
    for maps in proc.glob("[0-9]*/maps"):
        with contextlib.suppress(OSError):
            for line in maps.read_text().splitlines():
                if PREFIX in line:
                    found.add(line.rsplit("/", 1)[-1].split(" ", 1)[0])
    return found


def orphans(shm_dir: Path = SHM_DIR, proc: Path = Path("/proc")) -> set[str]:
    """Python-backend regions in ``shm_dir`` that no live process maps."""
    return region_names(shm_dir) - mapped_names(proc)


def remove_orphans(
    exclude: set[str] = frozenset(), shm_dir: Path = SHM_DIR, proc: Path = Path("/proc")
) -> list[str]:
    """Remove the orphaned regions not named in ``exclude`` (e.g. those that were there before
    a server started, which are not its own); the names removed, logged with their count."""
    removed = []
    for name in sorted(orphans(shm_dir, proc) - set(exclude)):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            (shm_dir / name).unlink()
            removed.append(name)
    if removed:
        log.warning("removed %d orphaned Python-backend shared-memory regions", len(removed))
    return removed
