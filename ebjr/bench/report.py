"""``BENCHMARKS.md`` and its plot from one run's results: the tables, the headline ratios
against their targets, latency, and when the cascade pays."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from ebjr.bench.bench_repository import (
    CHEAP_ROUTER,
    CHEAP_TEACHER,
    FLOOR,
    PYTHON_WRAPPED,
    ROUTER_BLS,
    TEACHER_2T,
    THREE_STAGE,
)
from ebjr.bench.perf import ideal_cascade
from ebjr.core.layout import ROUTER, TEACHER
from ebjr.tasks.detection import DETECTOR_ROUTER, DETECTOR_STUDENT, DETECTOR_TEACHER


def _row(results: dict, model: str, threshold: str | None, concurrency: int) -> dict:
    return next(
        r
        for r in results["cases"]
        if (r["model"], r["threshold"], r["concurrency"]) == (model, threshold, concurrency)
    )


def report(results: dict, out: Path, plot: Path | None) -> str:
    """``BENCHMARKS.md`` text (and the plot) from ``benchmark``'s results."""
    parity = repr(results["parity_threshold"])
    low, high = (
        min(r["concurrency"] for r in results["cases"]),
        max(r["concurrency"] for r in results["cases"]),
    )

    def row(model, threshold=None, c=high):
        return _row(results, model, threshold, c)

    s, t = row("student"), row("teacher")
    router, floor = row(ROUTER, parity), row(ROUTER, "-inf")
    fraction = router["teacher_fraction"] or 0.0
    ideal = ideal_cascade(s["throughput"], t["throughput"], fraction)
    ceiling = row(FLOOR)["throughput"] / s["throughput"]
    # A router that costs no more than the floor per request and calls the Teacher for f of
    # the rows: the most a Python-backend router can serve at this Teacher share.
    bound = ideal_cascade(row(FLOOR)["throughput"], t["throughput"], fraction)
    best = max(t["throughput"], row(TEACHER_2T)["throughput"])
    headroom = ideal_cascade(floor["throughput"], best, fraction) / best
    targets = [
        (f"router at parity / ideal cascade, c={high}", router["throughput"] / ideal, ">= 0.85"),
        (
            f"router at -inf / native Student, c={high}",
            floor["throughput"] / s["throughput"],
            ">= 0.7",
        ),
        (
            f"added p50 at c={low} over the native Student (ms; router at -inf), median of "
            f"{len(results['added_rounds'])} interleaved rounds",
            added_p50(results["added_rounds"]),
            "<= 0.6",
        ),
        *[
            (
                f"native / Python-wrapped {m}, c={c}",
                row(m, None, c)["throughput"] / row(PYTHON_WRAPPED[m], None, c)["throughput"],
                ">= 1",
            )
            for m in PYTHON_WRAPPED
            for c in (low, high)
        ],
        (
            f"router at parity / Teacher (the faster of its two configs), c={high}, median of "
            f"{len(results['pairs'])} interleaved rounds",
            over_best_teacher(results["pairs"]),
            ">= 2",
        ),
        (
            f"router at parity / Teacher (the faster of its two configs), p50 latency at c={low}, "
            f"median of {len(results['latency_rounds'])} interleaved rounds",
            over_best_teacher(results["latency_rounds"], "p50_ms"),
            "<= 0.6",
        ),
    ]
    if "encoded" in results:
        *rounds, (pixels_low, bytes_low) = results["encoded"]
        targets += [
            (
                f"router at parity, pixels / PNG bytes in (decoded in the router), c={high}, "
                f"median of {len(rounds)} interleaved rounds",
                float(
                    np.median([image["throughput"] / png["throughput"] for image, png in rounds])
                ),
                "<= 1.3",
            ),
            (
                f"p50 added by decoding PNG bytes at c={low} (ms; reported)",
                bytes_low["p50_ms"] - pixels_low["p50_ms"],
                "-",
            ),
        ]
    targets.append(
        (
            f"router at parity with its Teacher over BLS (`{ROUTER_BLS}`) / Teacher (the faster "
            f"of its two configs), c={high}, median of {len(results['pairs'])} interleaved "
            "rounds (reported)",
            over_best_teacher(results["pairs"], model=ROUTER_BLS),
            "-",
        )
    )
    targets.append(
        (
            f"router at parity, Teacher in process / over BLS (`teacher_execution`), c={high}, "
            f"median of {len(results['pairs'])} interleaved rounds",
            paired_ratio(results["pairs"], ROUTER, ROUTER_BLS),
            "> 1 to run it in process",
        )
    )
    if any(r["model"] == THREE_STAGE for r in results["pairs"][0]):
        targets.append(
            (
                f"three-stage / two-stage router at their defaults, c={high}, median of "
                f"{len(results['pairs'])} interleaved rounds",
                paired_ratio(results["pairs"], THREE_STAGE, ROUTER),
                "> 1 to serve three stages",
            )
        )
    lines = [
        "# BENCHMARKS (generated by `make bench`; do not edit)",
        "",
        f"Machine: {results['machine']}. Triton 2.51.0 (nvidia-pytriton 0.7.0), CPU only. "
        "Student and Teacher on Triton's native ONNX Runtime backend (built from "
        "`third_party/`); `*_python` are the same ONNX files wrapped in the Python backend; "
        f"`{FLOOR}` is the router's interface served by a model that does no work (the "
        "Python backend's floor). `perf_analyzer` over gRPC, one real Fashion-MNIST test image "
        "per request, every row measured on one server in this one run.",
        "",
        "## Targets (ratios from this run)",
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
        *[
            f"| {name} | {value:.2f} | {target} | {_met(value, target)} |"
            for name, value, target in targets
        ],
        f"| bound: `{FLOOR}` / native Student, c={high} | {ceiling:.2f} | the most any "
        "Python-backend router reaches at -inf | - |",
        f"| bound: `1 / (1/X_{FLOOR} + f/X_teacher)` / ideal cascade, c={high} | "
        f"{bound / ideal:.2f} | the most any Python-backend router reaches at parity | - |",
        f"| bound: `1 / (1/X_router(-inf) + f/X_best_teacher)` / X_best_teacher, c={high} | "
        f"{headroom:.2f} | the most this router reaches against the faster Teacher config if "
        "each Teacher row costs what that config costs served alone (its Teacher over BLS); "
        "in process (the default), each router instance runs its own Teacher session in its "
        "own thread and can pass it | - |",
        "",
        "The headline ratios round by round (router at parity / the faster Teacher config): "
        f"c={high} throughput "
        f"{_listed(best_teacher_ratios(results['pairs']))}; over BLS "
        f"{_listed(best_teacher_ratios(results['pairs'], model=ROUTER_BLS))}; c={low} p50 "
        f"{_listed(best_teacher_ratios(results['latency_rounds'], 'p50_ms'))}. The added p50 "
        f"at c={low} (ms): "
        f"{_listed(added_p50s(results['added_rounds']))}.",
        "",
        f"Ideal cascade = `1 / (1/X_student + f/X_teacher)` = {ideal:.0f} inf/s, with `f` = "
        f"{fraction:.1%} the router's measured Teacher share at its "
        f"calibrated default threshold {parity}, and `X` the native models' own throughputs "
        "(the Teacher's on one instance and one thread, as Triton serves it). With "
        "`teacher_execution: in_process` each of the router's instances runs a Teacher "
        "session of its own, so the router can pass this figure.",
    ]
    lines += cost_lines(results, parity, high)
    lines += latency_lines(results, parity, low, high)
    rounds = [r for p in results["pairs"] + results["cost_rounds"] for r in p]
    lines += ["", "## Every measurement", "", *MEASUREMENT_HEADER]
    for r in results["cases"] + results["sweep"] + rounds:
        frac = "-" if r["teacher_fraction"] is None else f"{r['teacher_fraction']:.1%}"
        lines.append(
            f"| {r['model']} | {r['threshold'] or '-'} | {r['concurrency']} | "
            f"{r['throughput']:.1f} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['p99_ms']:.3f} "
            f"| {frac} |"
        )
    profile = results["profile"]
    inferences = profile["row"]["throughput"]
    lines += [
        "",
        f"## Where the router's time goes (threshold {parity}, c={high})",
        "",
        f"CPU seconds per process over the profiled run ({inferences:.0f} inf/s; "
        "perf_analyzer itself takes the rest of the 2 cores):",
        "",
        "| process | CPU seconds |",
        "|---|---|",
        *[f"| {name} | {sec:.2f} |" for name, sec in profile["cpu_seconds"].items()],
        "",
        f"py-spy samples of one router process ({profile['samples']} samples, 250/s):",
        "",
        "| where | share of samples |",
        "|---|---|",
        *[f"| {name} | {share:.1%} |" for name, share in profile["shares"].items()],
    ]
    if "encoded" in results:
        lines += encoded_report(results)
    if "detection" in results:
        lines += detection_report(results)
    if plot is not None:
        _plot(results, plot)
        lines += ["", f"![throughput and p95 latency against the threshold]({plot.name})"]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def encoded_report(results: dict) -> list[str]:
    """The router on the same images sent as pixels and as PNG files, round by round."""
    lines = [
        "",
        "## Encoded images in (`image_bytes`)",
        "",
        "The router at its default on the same test images, sent as FP32 pixels (`image`) and "
        "as PNG files (`image_bytes`, base64 in perf_analyzer's input data; decoded by Pillow "
        "in the router's process, `ebjr/core/preprocess.py`), interleaved:",
        "",
        "| round | input | concurrency | inferences/s | p50 ms | p99 ms | to Teacher |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, pair in enumerate(results["encoded"], 1):
        for r in pair:
            lines.append(
                f"| {k} | {r['input']} | {r['concurrency']} | {r['throughput']:.1f} | "
                f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['teacher_fraction']:.1%} |"
            )
    return lines


def detection_report(results: dict) -> list[str]:
    """The detector router's section: its served speed-up over the Teacher detector at its
    default point, beside the FLOPs reduction calibration expects there."""
    rounds = results["detection"]
    c = rounds[0][0]["concurrency"]
    return [
        "",
        f"## Detection: `{DETECTOR_ROUTER}` at its default (97% of the Teacher's validation mAP)",
        "",
        f"One 96x96 test scene per request, c={c}, {len(rounds)} interleaved rounds.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| router / Teacher detector throughput, median of rounds | "
        f"{paired_ratio(rounds, DETECTOR_ROUTER, DETECTOR_TEACHER):.2f} |",
        f"| Student detector / Teacher detector throughput, median of rounds | "
        f"{paired_ratio(rounds, DETECTOR_STUDENT, DETECTOR_TEACHER):.2f} |",
        f"| fewer FLOPs than the Teacher at this point (calibration, validation) | "
        f"{results['detection_flops_ratio']:.2f}x |",
        "",
        "| round | model | inferences/s | p50 ms | p95 ms | to Teacher |",
        "|---|---|---|---|---|---|",
        *[
            f"| {i} | {r['model']} | {r['throughput']:.1f} | {r['p50_ms']:.2f} | "
            f"{r['p95_ms']:.2f} | "
            f"{'-' if r['teacher_fraction'] is None else format(r['teacher_fraction'], '.1%')} |"
            for i, round_ in enumerate(rounds, 1)
            for r in round_
        ],
    ]


MEASUREMENT_HEADER = [
    "| model | threshold | concurrency | inferences/s | p50 ms | p95 ms | p99 ms | to Teacher |",
    "|---|---|---|---|---|---|---|---|",
]


def latency_lines(results: dict, parity: str, low: int, high: int) -> list[str]:
    """Latency as the paper's Table 1 reports it: the Teacher alone against the router at its
    calibrated default, at one request in flight and under load."""
    lines = [
        "",
        "## Latency: the Teacher alone and the router at its default",
        "",
        "| model | concurrency | p50 ms | p99 ms | router / this Teacher, p50 | router / this "
        "Teacher, p99 |",
        "|---|---|---|---|---|---|",
    ]
    for c in (low, high):
        r = _row(results, ROUTER, parity, c)
        for teacher in ("teacher", TEACHER_2T):
            t = _row(results, teacher, None, c)
            lines.append(
                f"| {teacher} | {c} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | "
                f"{r['p50_ms'] / t['p50_ms']:.2f} | {r['p99_ms'] / t['p99_ms']:.2f} |"
            )
        lines.append(f"| {ROUTER} at {parity} | {c} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | | |")
    return lines


def break_even_ms(router_ms: float, teacher_fraction: float) -> float:
    """The Teacher cost per image above which a router that costs ``router_ms`` per image on
    its own (Python backend and Student) and sends ``teacher_fraction`` of the images on beats
    the Teacher alone: ``router_ms + f * T < T`` when ``T > router_ms / (1 - f)``."""
    return router_ms / (1.0 - teacher_fraction)


def cost_lines(results: dict, parity: str, high: int) -> list[str]:
    """When the cascade pays: the break-even Teacher cost from the router's own cost (at
    ``-inf``: the Python backend's floor plus the Student), checked against two Teachers of
    different cost served in the same run, each behind the same router at the same threshold."""
    alone = 1000.0 / _row(results, ROUTER, "-inf", high)["throughput"]  # ms per image, c=high
    alone_c1 = _row(results, ROUTER, "-inf", 1)["p50_ms"]
    f = _row(results, ROUTER, parity, high)["teacher_fraction"] or 0.0
    checks = [
        ("the default Teacher", results["pairs"], ROUTER, TEACHER),
        (
            "the previous default's architecture",
            results["cost_rounds"],
            CHEAP_ROUTER,
            CHEAP_TEACHER,
        ),
    ]
    lines = [
        "",
        "## When the cascade pays",
        "",
        f"Served on its own (`threshold=-inf`), the router costs **{alone:.3f} ms per image** "
        f"at c={high} (1 / its throughput: the Python backend's floor plus the Student) and "
        f"**{alone_c1:.3f} ms** p50 at c=1. A router that sends a share `f` of the images on "
        "beats the Teacher alone when the Teacher costs more than `router / (1 - f)` per "
        "image:",
        "",
        f"| Teacher share f | break-even Teacher ms/image, c={high} | break-even Teacher p50, "
        "c=1 |",
        "|---|---|---|",
        *[
            f"| {share:.0%}{' (this router at its default)' if share == f else ''} | "
            f"{break_even_ms(alone, share):.3f} | {break_even_ms(alone_c1, share):.3f} |"
            for share in sorted({0.1, 0.25, f, 0.5})
        ],
        "",
        f"Checked on two Teachers, each behind the same router at {parity} ({f:.1%} to the "
        f"Teacher), c={high}, medians of {len(results['pairs'])} interleaved rounds; predicted "
        "= `1 / (1/X_router(-inf) + f/X_teacher)`:",
        "",
        "| Teacher | MFLOPs | Teacher ms/image | break-even ms/image | predicted router / "
        "Teacher | measured router / Teacher |",
        "|---|---|---|---|---|---|",
    ]
    for name, rounds, router, teacher in checks:
        x_t = float(np.median([_in(r, teacher)["throughput"] for r in rounds]))
        predicted = ideal_cascade(1000.0 / alone, x_t, f) / x_t
        lines.append(
            f"| {name} (`{teacher}`) | {results['teacher_mflops'][teacher]:.0f} | "
            f"{1000.0 / x_t:.3f} | {break_even_ms(alone, f):.3f} | "
            f"{predicted:.2f} | {paired_ratio(rounds, router, teacher):.2f} |"
        )
    return lines


def _in(round_: list[dict], model: str) -> dict:
    """The measurement of ``model`` in one interleaved round."""
    return next(r for r in round_ if r["model"] == model)


def best_teacher_ratios(
    pairs: list[list[dict]], field: str = "throughput", model: str = ROUTER
) -> list[float]:
    """Per round, ``model`` (the router at its default) over the faster Teacher config of that
    round (``TEACHER``, ``TEACHER_2T``), by ``field``: ``throughput`` (the faster has the
    higher) or a latency such as ``p50_ms`` (the faster has the lower)."""
    faster = max if field == "throughput" else min
    return [
        _in(p, model)[field] / faster(_in(p, m)[field] for m in (TEACHER, TEACHER_2T))
        for p in pairs
    ]


def over_best_teacher(
    pairs: list[list[dict]], field: str = "throughput", model: str = ROUTER
) -> float:
    """The median over rounds of ``best_teacher_ratios``."""
    return float(np.median(best_teacher_ratios(pairs, field, model)))


# The pair behind "added p50 at c=1": the native Student and the router that never calls on
ADDED = (("student", None), (ROUTER, "-inf"))


def _listed(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def added_p50s(rounds: list[list[dict]]) -> list[float]:
    """Per interleaved round, the router at ``-inf``'s p50 minus the native Student's
    (``ADDED``), in ms."""
    return [_in(r, ROUTER)["p50_ms"] - _in(r, "student")["p50_ms"] for r in rounds]


def added_p50(rounds: list[list[dict]]) -> float:
    """The median over rounds of ``added_p50s``."""
    return float(np.median(added_p50s(rounds)))


def paired_ratio(pairs: list[list[dict]], top: str, bottom: str) -> float:
    """The median over interleaved rounds of model ``top``'s throughput over ``bottom``'s."""
    return float(
        np.median([_in(p, top)["throughput"] / _in(p, bottom)["throughput"] for p in pairs])
    )


def _met(value: float, target: str) -> str:
    """yes / no against ``target`` (e.g. ">= 2"); "-" for a figure that is only reported."""
    if target == "-":
        return "-"
    return "yes" if _meets(value, target) else "no"


def _meets(value: float, target: str) -> bool:
    op, bound = target.split()[:2]
    return {">=": value >= float(bound), "<=": value <= float(bound), ">": value > float(bound)}[op]


def machine() -> str:
    """Where a benchmark ran, for its report."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}; {_cpu_name()}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU model unknown"


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = max(r["concurrency"] for r in results["cases"])
    rows = [
        r
        for r in results["cases"] + results["sweep"]
        if r["model"] == ROUTER and r["concurrency"] == c
    ]
    rows.sort(key=lambda r: r["teacher_fraction"])
    x = [100 * r["teacher_fraction"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(x, [r["throughput"] for r in rows], "o-", label="router throughput")
    ax.set_xlabel("measured share of images sent to the Teacher (%) - threshold rising")
    ax.set_ylabel("inferences / s")
    ax2 = ax.twinx()
    ax2.plot(x, [r["p95_ms"] for r in rows], "s--", color="C1", label="p95 latency")
    ax2.set_ylabel("p95 latency (ms)")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    ax.set_title(f"EBJR router, concurrency {c}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
