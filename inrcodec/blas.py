"""One BLAS thread for a block of small products, safe when several threads ask at once.

threadpoolctl's limit is a setting of the whole process: two threads that each set it and restore
it in their own order (two decodes in a thread pool) would leave the other's products on many
threads, or the process on one thread for good. So the limit is set by the first caller in and
restored by the last one out, under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _OneThread:
    """The process's one BLAS limit and how many blocks are inside it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.limiter = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.depth == 0:
                import threadpoolctl

                self.limiter = threadpoolctl.threadpool_limits(1, user_api="blas")
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0:
                    self.limiter.restore_original_limits()
                    self.limiter = None


one_thread = _OneThread()  # ``with blas.one_thread():`` (the process has one BLAS setting, so one of these)
