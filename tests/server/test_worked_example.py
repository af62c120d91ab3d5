"""``docs/worked-example.md`` runs as written: its code blocks, in order (``bash`` as they are,
``python`` with the project's interpreter), from the project root, against the server the page
itself starts with ``make serve``."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

from ebjr.core.layout import PROJECT_ROOT

PAGE = PROJECT_ROOT / "docs" / "worked-example.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```$", re.S | re.M)


def script() -> str:
    """The page's blocks as one bash script that stops at the first failure."""
    parts = ["set -euo pipefail"]
    for language, body in BLOCK.findall(PAGE.read_text()):
        if language == "bash":
            parts.append(body)
        else:
            parts.append(f"{shlex.quote(sys.executable)} - <<'PYTHON'\n{body}PYTHON")
    return "\n".join(parts)


def test_the_worked_example_runs_end_to_end():
    blocks = BLOCK.findall(PAGE.read_text())
    assert [lang for lang, _ in blocks].count("python") == 3 and len(blocks) == 8
    try:
        done = subprocess.run(
            ["bash", "-c", script()],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:  # never leave the page's server running
        subprocess.run(["make", "stop", "HTTP_PORT=8100"], cwd=PROJECT_ROOT, capture_output=True)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "Calibrated on 1000 rows" in out  # from the logits file
    assert '"name":"route"' in out and '"name":"class"' in out  # curl's answer
    assert "class 9 answered by teacher" in out  # the ankle boot, over gRPC from bytes
    # the operating points the page reads back are the calibration's own
    served = re.search(
        r"Calibrated on 1000 rows: scores (\w+), default \(parity\) thresholds \(([^,]+),", out
    )
    assert served and f"score {served[1]} default {served[2]}" in out, out[-2000:]
    assert "stopped the server on HTTP port 8100" in out
