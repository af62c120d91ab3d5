"""Triton's native ONNX Runtime backend, built from the sources vendored in ``third_party/``.

    python -m ebjr.ops.native_backend          # build (cached) -> build/onnxruntime_backend/
    python -m ebjr.ops.native_backend --force  # rebuild

The ``nvidia-pytriton`` server build carries the Python backend only. Student and Teacher run on
Triton's own ``onnxruntime`` backend instead, built here in about half a minute from the upstream
r24.10 sources (Triton 2.51.0, the server in the wheel) against the ``onnxruntime`` wheel's
``libonnxruntime.so.1.*``. See ``third_party/triton_onnxruntime_backend/PROVENANCE.md``.

The build is cached behind a stamp that records a fingerprint of the sources, the flags and the
ONNX Runtime library, so running it again does nothing until one of them changes. Missing system
packages are installed with ``apt-get`` when run as root; otherwise the exact command is printed.
A failed build raises ``BuildError`` with one clear message and the log's path: the server never
falls back to another backend silently.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ebjr.core.layout import PROJECT_ROOT

SOURCES = PROJECT_ROOT / "third_party" / "triton_onnxruntime_backend"
BUILD_DIR = PROJECT_ROOT / "build" / "onnxruntime_backend"
LIBRARY = "libtriton_onnxruntime.so"
BACKEND_NAME = "onnxruntime"  # the folder Triton looks for under --backend-directory

# Debian package -> a file it installs that the build needs.
SYSTEM_PACKAGES = {
    "rapidjson-dev": Path("/usr/include/rapidjson/document.h"),
    "googletest": Path("/usr/src/googletest/CMakeLists.txt"),
}
TOOLS = {"cmake": "cmake", "g++": "g++", "make": "make"}  # executable -> Debian package

log = logging.getLogger(__name__)


class BuildError(RuntimeError):
    """The native backend could not be built; the message says why and what to do."""


def onnxruntime_library() -> Path:
    """``libonnxruntime.so.1.<version>`` inside the installed ``onnxruntime`` wheel."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("onnxruntime is not installed: run `make venv`")
    capi = Path(list(spec.submodule_search_locations)[0]) / "capi"
    found = sorted(capi.glob("libonnxruntime.so.1.*"))
    if not found:
        raise BuildError(f"no libonnxruntime.so.1.* in {capi}")
    return found[-1]


def cmake_flags(ort_lib_dir: Path) -> list[str]:
    """The configure flags: CPU only, everything from the vendored folders, no download."""
    triton = SOURCES / "triton"
    return [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DTRITON_ENABLE_GPU=OFF",
        f"-DTRITON_ONNXRUNTIME_INCLUDE_PATHS={SOURCES / 'onnxruntime' / 'include'}",
        f"-DTRITON_ONNXRUNTIME_LIB_PATHS={ort_lib_dir}",
        "-DFETCHCONTENT_FULLY_DISCONNECTED=ON",
        f"-DFETCHCONTENT_SOURCE_DIR_REPO-COMMON={triton / 'common'}",
        f"-DFETCHCONTENT_SOURCE_DIR_REPO-CORE={triton / 'core'}",
        f"-DFETCHCONTENT_SOURCE_DIR_REPO-BACKEND={triton / 'backend'}",
        f"-DFETCHCONTENT_SOURCE_DIR_GOOGLETEST={SYSTEM_PACKAGES['googletest'].parent}",
    ]


def fingerprint(ort_library: Path) -> str:
    """A digest of every vendored source file, the flags and the ONNX Runtime library's name."""
    digest = hashlib.sha256()
    for path in sorted(p for p in SOURCES.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(SOURCES)).encode())
        digest.update(path.read_bytes())
    digest.update(ort_library.name.encode())
    digest.update(" ".join(cmake_flags(BUILD_DIR / "onnxruntime")).encode())
    return digest.hexdigest()


def ensure_system_packages() -> None:
    """Install the build's missing Debian packages as root, else say exactly what to run."""
    missing = [pkg for pkg, marker in SYSTEM_PACKAGES.items() if not marker.exists()]
    missing += [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    command = f"apt-get install -y {' '.join(missing)}"
    if os.geteuid() != 0:
        raise BuildError(
            f"the native ONNX Runtime backend needs {', '.join(missing)}: "
            f"run `sudo apt-get update && sudo {command}`, then `make backend`"
        )
    log.info("installing %s", " ".join(missing))
    for step in (["apt-get", "update", "-q"], command.split() + ["-q"]):
        # fixed argv (apt-get and the packages above), no shell
        if subprocess.run(step, stdout=subprocess.DEVNULL).returncode != 0:  # nosec B603
            raise BuildError(f"`{' '.join(step)}` failed: install {', '.join(missing)} by hand")


def _stage_onnxruntime(ort_library: Path, lib_dir: Path) -> None:
    """A folder holding the wheel's library under the names the backend's CMake looks for."""
    lib_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ort_library, lib_dir / ort_library.name)
    for alias in ("libonnxruntime.so", "libonnxruntime.so.1"):
        (lib_dir / alias).unlink(missing_ok=True)
        (lib_dir / alias).symlink_to(ort_library.name)


def _run(command: list[str], log_file: Path, cwd: Path, what: str) -> None:
    with log_file.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        # cmake and make with this project's own arguments, no shell
        result = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)  # nosec B603
    if result.returncode != 0:
        tail = "".join(log_file.read_text().splitlines(keepends=True)[-15:])
        raise BuildError(f"{what} failed (exit {result.returncode}); log: {log_file}\n{tail}")


def build(force: bool = False, build_dir: Path = BUILD_DIR) -> Path:
    """Build ``libtriton_onnxruntime.so`` unless the stamp says it is current; return its path."""
    ort_library = onnxruntime_library()
    stamp, library = build_dir / "stamp", build_dir / "cmake" / LIBRARY
    wanted = fingerprint(ort_library)
    if not force and library.exists() and stamp.exists() and stamp.read_text() == wanted:
        return library
    ensure_system_packages()
    stamp.unlink(missing_ok=True)
    cmake_dir = build_dir / "cmake"
    if force:
        shutil.rmtree(cmake_dir, ignore_errors=True)
    cmake_dir.mkdir(parents=True, exist_ok=True)
    _stage_onnxruntime(ort_library, build_dir / "onnxruntime")
    log_file = build_dir / "build.log"
    log_file.write_text("")
    log.info("building Triton's ONNX Runtime backend (about 30 s; log: %s)", log_file)
    source = SOURCES / "triton" / "onnxruntime_backend"
    _run(
        ["cmake", str(source), *cmake_flags(build_dir / "onnxruntime")],
        log_file,
        cmake_dir,
        "configuring the native ONNX Runtime backend (cmake)",
    )
    jobs = str(os.cpu_count() or 2)
    _run(
        ["make", f"-j{jobs}", "triton-onnxruntime-backend"],
        log_file,
        cmake_dir,
        "compiling the native ONNX Runtime backend (make)",
    )
    if not library.exists():
        raise BuildError(f"the build finished but {library} is missing; log: {log_file}")
    stamp.write_text(wanted)
    return library


def built_library(build_dir: Path = BUILD_DIR) -> Path:
    """The built library, or ``BuildError`` saying how to build it (never a silent fallback)."""
    library = build_dir / "cmake" / LIBRARY
    if not (library.exists() and (build_dir / "stamp").exists()):
        raise BuildError(
            "Triton's native ONNX Runtime backend is not built: run `make backend` "
            "(or `python -m ebjr.ops.native_backend`)"
        )
    return library


def assemble(dest: Path, tritonserver_libs: Path, build_dir: Path = BUILD_DIR) -> Path:
    """Put the backend under ``dest/onnxruntime`` beside the Python backend; return that folder.

    It holds the library, the ONNX Runtime library it loads (its RUNPATH is ``$ORIGIN``) and a
    ``libtritonserver.so`` link to the wheel's renamed server library, which it links against.
    """
    library = built_library(build_dir)
    target = dest / BACKEND_NAME
    target.mkdir(parents=True, exist_ok=True)
    sources = [library, *sorted((build_dir / "onnxruntime").glob("libonnxruntime.so*"))]
    for source in sources:
        copy = target / source.name
        if source.is_symlink():
            link_to(copy, os.readlink(source))
        elif not copy.exists() or copy.stat().st_mtime != source.stat().st_mtime:
            copy.unlink(missing_ok=True)  # a running server keeps the old file's inode
            shutil.copy2(source, copy)
    server_libs = sorted(tritonserver_libs.glob("libtritonserver-*.so"))
    if not server_libs:
        raise BuildError(f"no libtritonserver-*.so in {tritonserver_libs}: reinstall the venv")
    link_to(target / "libtritonserver.so", str(server_libs[0]))
    return target


def link_to(link: Path, target: str) -> None:
    """``link`` -> ``target``, written only when it is not that already (an assembled image
    serves from a read-only filesystem)."""
    if link.is_symlink() and os.readlink(link) == target:
        return
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build Triton's native ONNX Runtime backend.")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        library = build(force=args.force)
    except BuildError as err:
        sys.exit(f"error: {err}")
    print(f"native ONNX Runtime backend: {library}")


if __name__ == "__main__":
    main()
