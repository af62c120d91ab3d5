"""The Python backend's shared-memory regions in ``/dev/shm``: removing the ones a dead server
left behind, and how much a pod needs.

Each Python-backend model instance gets a ``triton_python_backend_shm_region_<uuid>`` file
that the server and the stub map. A server that exits cleanly removes its regions; one killed
hard (a crash, SIGKILL) leaves them, and in a container ``/dev/shm`` is small (64 MB by
default). A region is an orphan when no live process maps it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

import numpy as np
from tritonclient.utils import triton_to_np_dtype

from ebjr.build import model_config as mc

log = logging.getLogger(__name__)

# where the Python backend puts its regions (not a temp file)
SHM_DIR = Path("/dev/shm")  # nosec B108
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


DEFAULT_REGION_MIB = 1  # the Python backend's region per model instance (shm-default-byte-size)
BATCHES_IN_FLIGHT = 4  # full batches an instance's region may hold at once (in, out, waiting)
STRING_BYTES = 64  # room for one TYPE_STRING element (the router's route names)
DOCKER_DEFAULT_MIB = 64  # the least a pod gets: what a container has without asking


def element_bytes(data_type: int) -> int:
    """Bytes per element of a ``config.pbtxt`` tensor's ``data_type`` (``STRING_BYTES`` for a
    string)."""
    name = mc.pb.DataType.Name(data_type).removeprefix("TYPE_")
    return STRING_BYTES if name == "STRING" else np.dtype(triton_to_np_dtype(name)).itemsize


def pod_shm_mib(repo: Path) -> int:
    """The ``/dev/shm`` a pod serving ``repo`` needs, in MiB: for every Python-backend model
    instance, its region (``DEFAULT_REGION_MIB``) plus ``BATCHES_IN_FLIGHT`` full batches of
    its inputs and outputs; rounded up to a power of two, at least ``DOCKER_DEFAULT_MIB``."""
    need = 0.0
    for path in sorted(repo.glob("*/config.pbtxt")):
        config = mc.read(path)
        if config.backend != "python":
            continue
        tensors = [*config.input, *config.output]
        row = sum(element_bytes(t.data_type) * int(np.prod(t.dims)) for t in tensors)
        batch_mib = BATCHES_IN_FLIGHT * max(config.max_batch_size, 1) * row / 2**20
        instances = sum(group.count or 1 for group in config.instance_group) or 1
        need += instances * (DEFAULT_REGION_MIB + batch_mib)
    return max(DOCKER_DEFAULT_MIB, 2 ** math.ceil(math.log2(max(need, 1))))
