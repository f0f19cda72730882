"""Many independent jobs on this machine or on a Ray cluster, behind one interface.

An executor maps a function over tasks and yields the results as they finish (not in order):

    with executor(workers=2) as ex:          # Serial(), Pool(2) or Ray(address)
        for result in ex.map(fn, tasks):
            ...

- :class:`Serial` runs them here, one after another;
- :class:`Pool` in ``workers`` local processes (spawned, so each imports afresh);
- :class:`Ray` as Ray tasks: ``address=None`` starts a local Ray (loopback only), ``"auto"`` joins
  the cluster this machine belongs to, anything else is a cluster's address. Each task declares
  its CPUs (``threads``) and a GPU when asked (``gpus``).

Every job runs with ``threads`` torch/BLAS threads (one by default): the same thread count gives
the same floating-point reductions, so a job's result does not depend on where it ran. ``fn`` and
the tasks are pickled, ``fn`` by reference: it must be a module-level function of a package every
worker can import (on a cluster: ``inrcodec`` installed on every node). Ray is imported only by
:class:`Ray`; without it, :class:`RayMissing` says in one line how to install it.
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

RAY_HINT = "Ray is not installed; pip install 'inrcodec[ray]' (or pip install ray)"
LOCAL = "local"  # --ray without an address: start a Ray on this machine


class RayMissing(ImportError):
    """``--ray`` without Ray installed."""


def limit_threads(n: int = 1) -> Callable[[], None]:
    """``n`` threads for torch, for BLAS (through threadpoolctl) and for the NumPy decoder. Returns
    what undoes it (for jobs run in this process)."""
    import threadpoolctl
    import torch

    from inrcodec.decoder.cpu import THREADS_ENV

    before = torch.get_num_threads(), os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = str(n)
    blas = threadpoolctl.threadpool_limits(n)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass  # already set in this process

    def undo() -> None:
        torch.set_num_threads(before[0])
        blas.restore_original_limits()
        if before[1] is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = before[1]

    return undo


def _die_with_parent(parent: int) -> None:
    """A pool worker's first act: on Linux, have the kernel send it SIGTERM when the process that
    started it ends, however it ends. Ctrl-C reaches the workers anyway, but a ``kill`` of the
    command (or of a benchmark) only reaches the parent, and its workers went on fitting, orphaned,
    until their jobs were done, on cores a rerun then shared with them. (The kernel watches the
    *thread* that started the worker: :class:`Pool` starts them from the thread that iterates its
    ``map``, the main one in every caller. Elsewhere than Linux only the check below is made.)"""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, ctypes.c_ulong(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # no libc prctl: the worker ends with its job, as before
    if os.getppid() != parent:  # the parent was gone before the request: the kernel will not tell
        os._exit(1)


def _call(fn: Callable, threads: int, task: Any) -> Any:
    """One job in a worker: its thread count, then ``fn(task)``."""
    limit_threads(threads)
    return fn(task)


def _stream(tasks: Iterable, submit: Callable[[Any], None], next_done: Callable[[], Any], limit: int) -> Iterator:
    """Keep at most ``limit`` tasks submitted; yield each result as it comes. Tasks are taken from
    ``tasks`` only when there is room, so a long list of inputs is never all in memory at once."""
    it = iter(tasks)
    pending = 0
    for task in itertools.islice(it, limit):
        submit(task)
        pending += 1
    while pending:
        result = next_done()
        pending -= 1
        for task in itertools.islice(it, 1):
            submit(task)
            pending += 1
        yield result


class Executor:
    """Runs ``fn`` over tasks; ``workers`` is how many run at once (for ETAs and progress)."""

    name = ""
    workers = 1

    def __init__(self, threads: int = 1):
        self.threads = threads

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        raise NotImplementedError

    def close(self) -> None:
        """Stop what is still running (Ctrl-C) and release the workers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.workers} {self.name} worker(s), {self.threads} thread(s) each"


class Serial(Executor):
    """In this process, one job after another (``fn`` need not be picklable)."""

    name = "serial"

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        undo = limit_threads(self.threads)
        try:
            for task in tasks:
                yield fn(task)
        finally:
            undo()

    def describe(self) -> str:
        return f"in this process, {self.threads} thread(s)"


class Pool(Executor):
    """``workers`` local processes (spawned: no state of this process leaks into them)."""

    name = "process"

    def __init__(self, workers: int, threads: int = 1):
        super().__init__(threads)
        self.workers = workers
        self.pool = None

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        """Results as they finish; a worker that dies (killed, out of memory) raises
        ``concurrent.futures.process.BrokenProcessPool`` here instead of leaving its job pending
        forever (which ``multiprocessing.Pool`` does)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        done: queue.Queue = queue.Queue()
        self.pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )

        def submit(task) -> None:
            self.pool.submit(_call, fn, self.threads, task).add_done_callback(done.put)

        try:
            yield from _stream(tasks, submit, lambda: done.get().result(), 2 * self.workers)
        finally:
            self.close()

    def close(self) -> None:
        if self.pool is not None:
            # Also on Ctrl-C: queued jobs are dropped and running ones killed; nothing half-done is
            # kept (outputs are atomic).
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RayMissing(RAY_HINT) from None
    return ray


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


class Ray(Executor):
    """Ray tasks of ``threads`` CPUs (and ``gpus`` GPUs) each, results streamed back as they finish.

    ``address``: ``None`` or ``"local"`` starts a Ray on this machine (``num_cpus`` CPUs, default all;
    no dashboard; its servers listen on the loopback interface only) unless this process has
    already started or joined one, which is then used as it is; ``"auto"`` joins the running
    cluster this machine is part of; ``"HOST:PORT"`` or ``"ray://HOST:10001"`` another one. A Ray
    this object started is shut down by :meth:`close`. ``runtime_env``: Ray's, for the job this
    process starts or joins (e.g. ``{"py_modules": [path]}`` ships a package that is not installed
    on the nodes); a Ray this process already uses keeps its own."""

    name = "Ray"

    def __init__(
        self,
        address: str | None = None,
        threads: int = 1,
        gpus: float = 0,
        num_cpus: int | None = None,
        runtime_env: dict | None = None,
    ):
        super().__init__(threads)
        self.address = None if address in (None, "", LOCAL) else address
        self.gpus = gpus
        self.num_cpus = num_cpus
        self.started = False
        self.refs: list = []
        if self.address is None:
            # Before Ray is imported: a local Ray then binds its servers to 127.0.0.1 only.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        self.ray = _import_ray()
        if not self.ray.is_initialized():
            kw: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False, "runtime_env": runtime_env}
            if self.address is None:
                kw.update(num_cpus=num_cpus, include_dashboard=False)
            self.ray.init(address=self.address, **kw)
            self.started = True
        cpus = self.ray.cluster_resources().get("CPU", 1)
        self.workers = max(1, int(cpus // max(threads, 1)))

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        ray = self.ray
        remote = ray.remote(_call).options(num_cpus=self.threads, num_gpus=self.gpus, max_retries=0)

        def submit(task) -> None:
            self.refs.append(remote.remote(fn, self.threads, task))

        def next_done():
            ready, self.refs = ray.wait(self.refs, num_returns=1)
            return ray.get(ready[0])

        try:
            # Room for every CPU of the cluster twice over: an autoscaler sees the queue, memory stays bounded.
            yield from _stream(tasks, submit, next_done, max(2 * self.workers, 8))
        finally:
            for ref in self.refs:  # Ctrl-C or an error: what is still running is cancelled
                ray.cancel(ref, force=True)
            self.refs = []

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
        self.started = False

    def describe(self) -> str:
        where = "a local Ray" if self.address is None else f"the Ray at {self.address}"
        gpu = f" and {self.gpus:g} GPU" if self.gpus else ""
        return f"{where} ({self.workers} job(s) at once), {self.threads} CPU(s){gpu} per job"


def executor(
    workers: int = 1,
    ray: str | None = None,
    threads: int = 1,
    device: str | None = None,
    num_cpus: int | None = None,
    runtime_env: dict | None = None,
) -> Executor:
    """The executor a command line asks for: ``ray`` (an address, ``"local"``) wins, then
    ``workers`` > 1 local processes, else this process. On Ray a job on a CUDA device asks for a GPU."""
    if ray is not None:
        gpus = 1 if device is not None and device.startswith("cuda") else 0
        return Ray(ray, threads=threads, gpus=gpus, num_cpus=num_cpus, runtime_env=runtime_env)
    if workers > 1:
        return Pool(workers, threads)
    return Serial(threads)
