"""The command-line clients against the real server, over both protocols."""

from __future__ import annotations

import contextlib
import http.server
import socket
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ebjr.ops.client import classify, connect, describe_router, load_image
from ebjr.training import data

sys.path.insert(0, str(Path(__file__).parents[2] / "clients"))
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
            "--workers",
            "1",  # one Teacher call at a time: well within its deadline on a busy machine
        ]
    )
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    rows = {row[0]: row for row in rows if row and row[0] in ("-inf", "inf")}
    accuracy = {t: float(row[2]) for t, row in rows.items()}
    assert rows["inf"][3:5] == ["100.00%", "0.00%"]  # all to the Teacher, none fell back
    images, labels = data.load_split("test")
    grpc = connect(server.grpc_url, "grpc")
    teacher = np.concatenate(
        [classify(grpc, images[i : i + 64], threshold="inf").classes for i in range(0, 640, 64)]
    )
    assert code == 0
    assert accuracy["inf"] == pytest.approx((teacher == labels[:640]).mean(), abs=1e-4)
    assert accuracy["-inf"] < accuracy["inf"]


def write_png(path: Path, array: np.ndarray, mode: str) -> Path:
    Image.fromarray(array, mode).save(path)
    return path


def test_image_files_colour_and_transparency_are_handled_as_documented(tmp_path):
    grey = (data.load_split("test")[0][7][0] * 255).round().astype(np.uint8)
    expected = load_image(str(write_png(tmp_path / "l.png", grey, "L")), False, 28)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)  # colour: converted to luminance
    got = load_image(str(write_png(tmp_path / "rgb.png", rgb, "RGB")), False, 28)
    np.testing.assert_allclose(got, expected, atol=1 / 255)
    # transparent pixels are background: black, or white with --invert
    rgba = np.dstack([np.full_like(grey, 255)] * 3 + [grey])
    got = load_image(str(write_png(tmp_path / "rgba.png", rgba, "RGBA")), False, 28)
    np.testing.assert_allclose(got, expected, atol=1 / 255)
    inverted = load_image(str(tmp_path / "rgba.png"), True, 28)
    assert inverted.max() <= 1 / 255  # white item composited on white, then inverted: empty


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.png", "no such file"),
        (  # sent as bytes: the router's own 400 comes back as the one line
            lambda d: (d / "notes.png").write_text("not an image") and d / "notes.png",
            "not a PNG or JPEG image",
        ),
    ],
)
def test_classify_cli_refuses_bad_files_in_one_line(server, tmp_path, capsys, make, message):
    code = classify_cli.main(["--png", str(make(tmp_path)), "--url", server.http_url])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


@contextlib.contextmanager
def silent_port():
    """A port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"127.0.0.1:{s.getsockname()[1]}"


@contextlib.contextmanager
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield f"127.0.0.1:{port}"


@pytest.mark.parametrize("cli", [classify_cli, evaluate_cli])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize(("port", "reason"), [(closed_port, "refused"), (silent_port, "timed out")])
def test_clis_explain_an_unreachable_server_and_exit_non_zero(capsys, cli, protocol, port, reason):
    with port() as url:
        args = ["--url", url, "--protocol", protocol, "--timeout", "1"]
        code = cli.main(args + (["--limit", "64"] if cli is evaluate_cli else []))
    err = capsys.readouterr().err
    assert code == 1 and f"cannot reach a Triton server at {url}" in err, err
    assert reason in err and "make serve" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("cli", [classify_cli, evaluate_cli])
def test_clis_name_an_unknown_model_and_the_ready_ones(server, capsys, cli):
    code = cli.main(["--url", server.grpc_url, "--protocol", "grpc", "--model", "nope"])
    err = capsys.readouterr().err
    assert code == 1 and "model 'nope' is not ready" in err and "ebjr_router" in err


def test_clis_say_when_the_server_is_not_ready_yet(capsys):
    """A stand-in answering Triton's readiness endpoint with 503, as a server still loading
    its models does (the client's error path, not an integration test)."""

    class NotReady(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotReady) as fake:
        threading.Thread(target=fake.serve_forever, daemon=True).start()
        code = classify_cli.main(["--url", f"127.0.0.1:{fake.server_address[1]}"])
        fake.shutdown()
    assert code == 1 and "not ready yet" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("knob", "message"),
    [
        (["--teacher-fraction", "2"], "teacher_fraction must be in [0, 1]"),
        (["--min-accuracy", "1.5"], "min_accuracy must be in"),
        (["--threshold", "abc"], "threshold must be a number"),
    ],
)
def test_classify_cli_reports_bad_knobs_in_one_line(server, capsys, knob, message):
    code = classify_cli.main(["--url", server.http_url, "--count", "1", *knob])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_classify_cli_header_names_the_served_score(server, capsys):
    info = describe_router(connect(server.http_url, "http"))
    assert classify_cli.main(["--url", server.http_url, "--count", "1"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert f"routing score {info.score!r}" in header and info.score != "calibrated"
