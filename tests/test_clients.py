"""The command-line clients against the real server, over both protocols."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ebjr import data
from ebjr.client import classify, connect

sys.path.insert(0, str(Path(__file__).parent.parent / "clients"))
import classify as classify_cli  # noqa: E402
import evaluate as evaluate_cli  # noqa: E402


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_classify_cli_on_a_png_names_the_routers_class(server, tmp_path, capsys, protocol):
    image = data.load_split("test")[0][7]  # (1, 28, 28) in [0, 1]
    png = tmp_path / "item.png"
    Image.fromarray((image[0] * 255).round().astype(np.uint8)).save(png)
    url = server.http_url if protocol == "http" else server.grpc_url
    code = classify_cli.main(
        ["--png", str(png), "--protocol", protocol, "--url", url, "--threshold", "-inf"]
    )
    out = capsys.readouterr().out
    expected = classify(connect(url, protocol), np.round(image * 255)[None] / 255, threshold="-inf")
    assert code == 0
    assert data.CLASS_NAMES[expected.classes[0]] in out and "student" in out


def test_classify_cli_reports_a_bad_threshold_clearly(server, capsys):
    code = classify_cli.main(["--url", server.http_url, "--count", "1", "--threshold", "abc"])
    assert code == 1 and "threshold must be a number" in capsys.readouterr().err


def test_evaluate_cli_accuracy_rises_with_the_threshold(server, capsys):
    code = evaluate_cli.main(
        [
            "--url",
            server.grpc_url,
            "--protocol",
            "grpc",
            "--limit",
            "640",
            "--threshold",
            "-inf",
            "inf",
        ]
    )
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    accuracy = {row[0]: float(row[2]) for row in rows}
    images, labels = data.load_split("test")
    grpc = connect(server.grpc_url, "grpc")
    teacher = np.concatenate(
        [classify(grpc, images[i : i + 64], threshold="inf").classes for i in range(0, 640, 64)]
    )
    assert code == 0
    assert accuracy["inf"] == pytest.approx((teacher == labels[:640]).mean(), abs=1e-4)
    assert accuracy["-inf"] < accuracy["inf"]
