"""inrcodec/blas.py: one BLAS thread for a block, restored by the last of overlapping callers."""

from __future__ import annotations

import threading

import numpy as np  # noqa: F401  (loads NumPy's BLAS, which threadpoolctl then sees)
import threadpoolctl

from inrcodec import blas


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_overlapping_blocks_in_threads_restore_the_setting_once_all_are_out():
    """Block A enters, B enters, A leaves (B must still be on one thread), B leaves (restored):
    the order in which two decodes in a thread pool would cross."""
    before = _blas_threads()
    assert before, "no BLAS library loaded: the test would see nothing"
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with blas.one_thread():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with blas.one_thread():
            b_in.set()
            a_out.wait(5)
            seen["b after a left"] = _blas_threads()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(n == 1 for n in seen["b after a left"])
    assert _blas_threads() == before
    with blas.one_thread(), blas.one_thread():  # nesting in one thread
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before
