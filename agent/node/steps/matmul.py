"""The burn-in without DCGM: FP32 matrix multiplies on each GPU, checked against the CPU, timed.

Written against an array module ``xp`` with numpy's interface (cupy on a GPU; numpy itself runs
the same code on the CPU). The inputs are made on the CPU with a seeded generator, so numpy
computes the reference rows from exactly what the GPU multiplied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy

#: An element is wrong when it differs from the CPU's float64 value by more than this fraction
#: of sum(|a_ik| * |b_kj|): far above FP32 (or TF32) rounding, far below a flipped exponent bit.
TOLERANCE = 1e-4
#: Matrix multiplies queued between two synchronisations (and clock reads).
BATCH = 8


def inputs(size: int, seed: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Two float32 matrices of ``size`` x ``size`` with entries uniform in [-1, 1)."""
    rng = numpy.random.default_rng(seed)
    a = rng.uniform(-1.0, 1.0, (size, size)).astype(numpy.float32)
    b = rng.uniform(-1.0, 1.0, (size, size)).astype(numpy.float32)
    return a, b


def check_rows(
    a: numpy.ndarray, b: numpy.ndarray, c_rows: numpy.ndarray, rows: numpy.ndarray
) -> dict[str, Any]:
    """Compare rows ``rows`` of a product computed elsewhere (``c_rows``) with the CPU's float64 product."""
    a64 = a[rows].astype(numpy.float64)
    b64 = b.astype(numpy.float64)
    reference = a64 @ b64
    bound = TOLERANCE * (numpy.abs(a64) @ numpy.abs(b64))
    error = numpy.abs(numpy.asarray(c_rows, dtype=numpy.float64) - reference)
    bad = ~(error <= bound)  # NaN and Inf count as wrong
    return {
        "checked": int(error.size),
        "mismatches": int(bad.sum()),
        "max_error": float(numpy.nanmax(error)) if numpy.isfinite(error).any() else None,
        "max_bound": float(bound.max()),
    }


def burn(
    xp: Any,
    synchronize: Callable[[], None],
    size: int,
    seconds: float,
    seed: int = 0,
    sample_rows: int = 8,
) -> dict[str, Any]:
    """Multiply two ``size`` x ``size`` FP32 matrices with ``xp`` for ``seconds``; check and time it.

    The product is checked on ``sample_rows`` random rows after the first multiply and after the
    last one. Returns the throughput (TFLOPS, 2 n^3 per multiply) and the checks' counts.
    """
    a_host, b_host = inputs(size, seed)
    to_host = getattr(xp, "asnumpy", numpy.asarray)
    a, b = xp.asarray(a_host), xp.asarray(b_host)
    pick = numpy.random.default_rng(seed + 1)
    checks = []

    def check(c: Any) -> None:
        rows = numpy.sort(pick.choice(size, min(sample_rows, size), replace=False))
        checks.append(check_rows(a_host, b_host, to_host(c[rows]), rows))

    c = xp.matmul(a, b)
    synchronize()
    check(c)
    count, started = 0, time.perf_counter()
    while True:
        for _ in range(BATCH):
            xp.matmul(a, b, out=c)
        count += BATCH
        synchronize()
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
    check(c)
    return {
        "size": size,
        "precision": "fp32",
        "matmuls": count,
        "seconds": round(elapsed, 3),
        "tflops": float(f"{2.0 * size**3 * count / elapsed / 1e12:.4g}"),
        "checked": sum(x["checked"] for x in checks),
        "mismatches": sum(x["mismatches"] for x in checks),
        "max_error": max((x["max_error"] for x in checks if x["max_error"] is not None), default=None),
        "max_bound": max(x["max_bound"] for x in checks),
    }


def judge(
    measured: dict[str, Any], peak: dict[str, float] | None, min_fraction: float, sku: str | None
) -> tuple[list[str], str | None]:
    """What is wrong with one GPU's burn-in (messages), and what could not be judged (or None)."""
    wrong = []
    if measured["mismatches"]:
        wrong.append(
            f"matrix multiply differs from the CPU's result: {measured['mismatches']} of "
            f"{measured['checked']} checked elements off (worst error {measured['max_error']}, "
            f"allowed up to {measured['max_bound']:.3g})"
        )
    figure = (peak or {}).get("fp32")
    if not figure:
        return wrong, f"throughput not compared: the catalogue has no FP32 peak for SKU {sku or 'unknown'}"
    measured["peak_tflops"] = figure
    measured["fraction_of_peak"] = round(measured["tflops"] / figure, 4)
    if measured["tflops"] < min_fraction * figure:
        wrong.append(
            f"FP32 matrix multiply throughput {measured['tflops']:.3g} TFLOPS is below "
            f"{min_fraction:.0%} of the SKU's datasheet peak {figure:g} TFLOPS ({sku})"
        )
    return wrong, None
