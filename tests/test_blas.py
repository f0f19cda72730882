"""inrcodec/blas.py: one BLAS thread for a block, set by the first of overlapping callers and
restored by the last."""

from __future__ import annotations

import threading

import numpy as np  # noqa: F401  (loads NumPy's BLAS, which threadpoolctl then sees)
import threadpoolctl

from inrcodec import blas


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_overlapping_blocks_in_threads_set_the_limit_once_and_restore_it_last(monkeypatch):
    """Block A enters, B enters, A leaves, B leaves (the order in which two decodes in a thread
    pool can cross): one limit is set, at A's entry, and restored once, at B's exit. (threadpoolctl
    is replaced by a recorder: whether OpenBLAS shows a limit set on one thread to another depends
    on how it was built and what else loaded it, which is not this module's to test.)"""
    events = []

    class Recorder:
        def __init__(self, limits, user_api):
            assert (limits, user_api) == (1, "blas")
            events.append("set")

        def restore_original_limits(self):
            events.append("restore")

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", Recorder)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a():
        with blas.one_thread():
            events.append("a in")
            a_in.set()
            b_in.wait(5)
        events.append("a out")
        a_out.set()

    def b():
        a_in.wait(5)
        with blas.one_thread():
            events.append("b in")
            b_in.set()
            a_out.wait(5)
            events.append("b last")

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert events == ["set", "a in", "b in", "a out", "b last", "restore"]
    assert blas.one_thread.depth == 0 and blas.one_thread.limiter is None


def test_nested_blocks_hold_one_thread_and_restore_the_setting():
    before = _blas_threads()
    assert before, "no BLAS library loaded: the test would see nothing"
    with blas.one_thread(), blas.one_thread():
        assert all(n == 1 for n in _blas_threads())
    assert _blas_threads() == before
