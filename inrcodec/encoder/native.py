"""The fused step's elementwise passes as compiled code (``FitConfig.kernel = "native"``).

The fused step (encoder/fused.py) leaves, besides the matrix products, four passes over each
(N, width) activation to torch's kernels: the bias copied into the product's output, ``sin``,
``cos``, and in the backward pass ``c·g`` and its column sums. ``fused_kernels.c`` does them in
two (bias, sin and cos in one; the product and the sums in the other), the sine and cosine of an
argument from one shared range reduction (glibc's vector sine and cosine, libmvec, for the rare
argument beyond 8192). For a dense network's plain step it also runs the whole step in one call
(``Kernels.siren_step``: the forward pass, the loss and every gradient, the products through the
``sgemm`` of torch's own MKL, found in its library), which removes the step's fixed cost of some
forty small operations and the autograd function's Python; on several torch threads it runs
chunks of the batch's rows at once (OpenMP, on torch's own runtime), each with its own products,
and sums their gradients in chunk order. It is compiled on first use with
the machine's C compiler (``$CC`` or ``cc``) into the user's cache (``$XDG_CACHE_HOME/inrcodec``,
else ``~/.cache/inrcodec``), once per source, compiler and machine, and loaded with ``ctypes``:
no build step at install, and nothing of torch's C++ API to compile against.

It is the same function within float rounding (its sine and cosine within 2.5·10⁻⁷ of the
exact values, a tested bound: two units in the last place of a value near 1; torch's own
vectorised ones are within 4 ulp), so like the fused step itself it writes files that differ from
the torch kernels' in the last bits of the weights. Where it cannot run (no C compiler, no
libmvec or libgomp, a CPU with neither AVX-512 nor AVX2 with FMA, on which it would be slower
than torch) :func:`load` raises :class:`Unavailable` with one line saying why, and a fit with
``kernel="auto"`` (the presets') takes torch's kernels instead (:func:`unavailable`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("fused_kernels.c")
FLAGS = ("-O3", "-fPIC", "-shared", "-fno-math-errno", "-fopenmp")  # no -march: each path names its own target
LIBS = ("-lmvec", "-lm")
COMPILE_SECONDS = 120
MAX_WIDTH = 4096  # the widest layer the passes take (their scratch: 16 rows of floats)


class Unavailable(RuntimeError):
    """The native kernels cannot run here; the message is one line saying why."""


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$XDG_CACHE_HOME/inrcodec``, else ``~/.cache/inrcodec``."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "inrcodec"


def _compiler() -> list[str]:
    cc = shlex.split(os.environ.get("CC", "")) or [shutil.which("cc") or shutil.which("gcc") or ""]
    if not cc[0] or not shutil.which(cc[0]):
        raise Unavailable("native kernels: no C compiler (set CC, or install gcc)")
    return cc


def build(folder: Path | None = None) -> Path:
    """The compiled library for this source, compiler and machine: from the cache, or compiled
    into it (to a temporary name, then renamed: a concurrent or killed build leaves no half file).
    A compiler that cannot link OpenMP gets the library without it (the whole step then runs one
    chunk at a time: :attr:`Kernels.chunks_ok`)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise Unavailable(f"native kernels: x86-64 only (this machine is {platform.machine()})")
    cc = _compiler()
    try:
        version = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise Unavailable(f"native kernels: {cc[0]} does not run ({e})") from None
    folder = cache_dir() if folder is None else folder
    variants = (FLAGS, tuple(f for f in FLAGS if f != "-fopenmp"))
    libs = [folder / f"fused-kernels-{_key(cc, version, flags)}.so" for flags in variants]
    for lib in libs:
        if lib.is_file():
            return lib
    first: Unavailable | None = None
    for flags, lib in zip(variants, libs, strict=True):
        try:
            return _compile(cc, flags, folder, lib)
        except Unavailable as e:
            first = first or e
    raise first  # the OpenMP build's reason: the fuller one


def _key(cc: list[str], version: str, flags: tuple[str, ...]) -> str:
    """What the library depends on: source, compiler, flags, the C library (libmvec) and the
    architecture; not the OS kernel's release, which would rebuild it after every update."""
    parts = [SOURCE.read_text(), *cc, version, *flags, *LIBS, platform.machine(), *platform.libc_ver()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _compile(cc: list[str], flags: tuple[str, ...], folder: Path, lib: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fused-kernels-", suffix=".so", dir=folder)
    except OSError as e:
        raise Unavailable(f"native kernels: cannot write the build to {folder} ({e.strerror or e})") from None
    os.close(fd)
    try:
        res = subprocess.run(
            [*cc, *flags, str(SOURCE), "-o", tmp, *LIBS], capture_output=True, text=True, timeout=COMPILE_SECONDS
        )
        if res.returncode != 0:
            raise Unavailable(f"native kernels: {cc[0]} failed: {_why(res.stderr)}")
        os.replace(tmp, lib)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"native kernels: {cc[0]} took over {COMPILE_SECONDS} s") from None
    except OSError as e:
        raise Unavailable(f"native kernels: building into {folder} failed ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def _why(stderr: str) -> str:
    """The line of a failed compile that says why: a missing library or header before a generic
    error (a missing libmvec ends in collect2's "ld returned 1", which says nothing)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "collect2" not in line]
    for words in (("cannot find", "not found", "undefined reference", "No such file"), ("error",)):
        if hit := next((line for line in lines if any(w in line for w in words)), None):
            return hit[:300]
    return lines[0][:300] if lines else "no message"


def _sgemm() -> int | None:
    """The address of the BLAS ``sgemm`` inside torch's own library (MKL's, in the official x86-64
    wheels), for the whole step's products; None where this torch has none to give (the whole
    step is then unavailable, the two passes are not)."""
    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        return ctypes.cast(ctypes.CDLL(str(lib)).sgemm_, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None


def _openmp_runtimes() -> set[str]:
    """The OpenMP runtimes mapped into this process (libgomp, Intel's libiomp5, LLVM's libomp)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return {"unknown"}
    names = ("libgomp", "libiomp", "libomp")
    return {line.split()[-1] for line in maps.splitlines() if any(n in line.rsplit("/", 1)[-1] for n in names)}


class Kernels:
    """The two passes on float32 CPU tensors, row-major (N, width), width at most
    :data:`MAX_WIDTH`, single-threaded (memory-bound; a step's matrix products keep torch's
    threads); and the whole step, whose chunks of rows run on torch's threads."""

    def __init__(self, path: Path, level: int | None = None) -> None:
        """``level`` (512 or 256) picks a path below the best this CPU has (the tests run both)."""
        before = _openmp_runtimes()  # torch's, loaded with it
        try:
            self._lib = ctypes.CDLL(str(path))
        except OSError as e:
            raise Unavailable(f"native kernels: {path} does not load ({e})") from None
        self.level = int(self._lib.inr_level())
        # The whole step runs chunks of rows on several threads only on the runtime torch already
        # runs, and only if that is the GNU one torch's wheels bundle (torch/lib/libgomp*): then its
        # chunks run on torch's own threads and MKL, seeing their parallel region, runs each chunk's
        # products on one thread. A library built without OpenMP, a runtime the library brought in
        # (a renamed copy, LLVM's libomp) or Intel's libiomp5 in the process: one chunk. (Other
        # packages' own renamed copies, e.g. scikit-learn's, are theirs and do not matter.)
        after = _openmp_runtimes()
        torch_lib = str(Path(torch.__file__).parent / "lib") + "/"
        torchs = any(p.startswith(torch_lib) and "libgomp" in p.rsplit("/", 1)[-1] for p in before)
        intel = any("libiomp" in p.rsplit("/", 1)[-1] for p in before)
        self.chunks_ok = bool(self._lib.inr_openmp()) and torchs and not intel and after == before
        if self.level == 0:
            raise Unavailable("native kernels: this CPU has neither AVX-512 nor AVX2 with FMA")
        if level is not None:
            if level not in (256, 512) or level > self.level:
                raise ValueError(f"level {level}: this CPU runs 256 or up to {self.level}")
            self.level = level
        p, n = ctypes.c_void_p, ctypes.c_long
        self._lib.inr_bias_sincos.argtypes = [ctypes.c_int, p, p, p, n, n]
        self._lib.inr_mul_colsum.argtypes = [ctypes.c_int, p, p, p, n, n]
        self._lib.inr_bias_sincos.restype = self._lib.inr_mul_colsum.restype = ctypes.c_int
        step = [ctypes.c_int, p, n, ctypes.c_int, p, p, p, n, p, n, p, *[p] * 9, ctypes.c_int]
        self._lib.inr_siren_step.argtypes = step
        self._lib.inr_siren_step.restype = ctypes.c_double
        self.sgemm = _sgemm()  # None: no whole step (siren_step) here

    @staticmethod
    def _check(w: int, *pairs: tuple[str, torch.Tensor, tuple[int, ...]]) -> None:
        """Each tensor on the CPU, contiguous, float32 and of its shape; at most MAX_WIDTH wide;
        no two sharing memory (the C code reads one while it writes the other)."""
        for name, t, shape in pairs:
            if t.device.type != "cpu" or not t.is_contiguous():
                raise ValueError(f"native kernels take contiguous CPU tensors ({name} is not)")
            if t.dtype != torch.float32:
                raise ValueError(f"native kernels take float32 tensors ({name} is {t.dtype})")
            if tuple(t.shape) != shape:
                raise ValueError(f"{name} should be {shape}, not {tuple(t.shape)}")
        if not 1 <= w <= MAX_WIDTH:
            raise ValueError(f"native kernels: width {w} is not in 1..{MAX_WIDTH}")
        spans = sorted(((t.data_ptr(), t.data_ptr() + t.numel() * 4, name) for name, t, _ in pairs), key=lambda x: x[0])
        for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
            if start < end:
                raise ValueError(f"native kernels: {a} and {b} share memory")

    def bias_sincos(self, z: torch.Tensor, b: torch.Tensor, s: torch.Tensor) -> None:
        """s = sin(z + b), then z = cos(z + b): z (N, W) float32, b (W,), s like z."""
        n, w = z.shape
        self._check(w, ("z", z, (n, w)), ("b", b, (w,)), ("s", s, (n, w)))
        if self._lib.inr_bias_sincos(self.level, z.data_ptr(), b.data_ptr(), s.data_ptr(), n, w):
            raise MemoryError("native kernels: no memory for a 16-row scratch")

    def mul_colsum(self, c: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """c = c g in place; returns its column sums (W,), float32 (summed in double)."""
        n, w = c.shape
        self._check(w, ("c", c, (n, w)), ("g", g, (n, w)))
        db = torch.empty(w, dtype=torch.float64)
        if self._lib.inr_mul_colsum(self.level, c.data_ptr(), g.data_ptr(), db.data_ptr(), n, w):
            raise MemoryError("native kernels: no memory for a 16-row scratch")
        return db.to(torch.float32)

    def siren_step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        pixel_w: torch.Tensor | None,
        weights: list[torch.Tensor],
        biases: list[torch.Tensor],
        omegas: list[float],
        grads: tuple[list[torch.Tensor], list[torch.Tensor]],
        buffers: tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor],
        threads: int | None = None,
    ) -> float:
        """One step of a SIREN in one call (fused_kernels.c, ``inr_siren_step``): the loss of the
        feature rows ``x`` (N, F) against the colours ``y`` (N, C) (each a view whose rows may be
        strided, columns contiguous), each pixel's term weighted by ``pixel_w`` unless None; the
        gradients written into ``grads`` (dW and db per layer, like the weights), each pixel's
        squared error (mean over colours) into ``buffers[4]``. ``buffers``: the sine and cosine
        buffers (N, width) of each hidden layer, g (N, widest hidden), the output (N, C) and the
        per-pixel errors (N,). ``threads`` (default torch's thread count) chunks of rows run at
        once, their gradients summed in chunk order: the same bits every run for a thread count,
        other rounding between counts (as torch's own sums). Returns the loss."""
        if self.sgemm is None:
            raise Unavailable("native kernels: this torch exports no sgemm for the whole step")
        n, layers = x.shape[0], len(weights)
        dims = [weights[0].shape[1]] + [w.shape[0] for w in weights]
        sines, cosines, g, out, per_pixel = buffers
        for name, t in (("x", x), ("y", y)):
            if t.device.type != "cpu" or t.dtype != torch.float32 or t.stride(1) != 1 or t.shape[0] != n:
                raise ValueError(f"native kernels: {name} must be float32 CPU rows of contiguous columns")
            if t.shape[0] > 1 and not t.shape[1] <= t.stride(0) < 2**31 or n >= 2**31:  # BLAS's int sizes
                raise ValueError(
                    f"native kernels: {name}'s rows are not a BLAS matrix ({n} rows, stride {t.stride(0)})"
                )
        widest = max(dims[1:-1], default=1)
        pairs = [("out", out, (n, dims[-1])), ("errors", per_pixel, (n,)), ("g", g, (n, widest))]
        pairs += [(f"w{i}", w, (dims[i + 1], dims[i])) for i, w in enumerate(weights)]
        pairs += [(f"b{i}", b, (dims[i + 1],)) for i, b in enumerate(biases)]
        pairs += [(f"dw{i}", w, (dims[i + 1], dims[i])) for i, w in enumerate(grads[0])]
        pairs += [(f"db{i}", b, (dims[i + 1],)) for i, b in enumerate(grads[1])]
        pairs += [(f"s{i}", t, (n, dims[i + 1])) for i, t in enumerate(sines)]
        pairs += [(f"c{i}", t, (n, dims[i + 1])) for i, t in enumerate(cosines)]
        if pixel_w is not None:
            pairs.append(("pixel_w", pixel_w, (n,)))
        self._check(max(dims), *pairs)
        ptrs = lambda ts: (ctypes.c_void_p * len(ts))(*[t.data_ptr() for t in ts])  # noqa: E731
        loss = self._lib.inr_siren_step(
            self.level,
            self.sgemm,
            n,
            layers,
            (ctypes.c_int * len(dims))(*dims),
            (ctypes.c_float * len(omegas))(*omegas),
            x.data_ptr(),
            x.stride(0),
            y.data_ptr(),
            y.stride(0),
            None if pixel_w is None else pixel_w.data_ptr(),
            ptrs(weights),
            ptrs(biases),
            ptrs(grads[0]),
            ptrs(grads[1]),
            ptrs(sines),
            ptrs(cosines),
            g.data_ptr(),
            out.data_ptr(),
            per_pixel.data_ptr(),
            (torch.get_num_threads() if threads is None else threads) if self.chunks_ok else 1,
        )
        if loss < 0:
            raise MemoryError("native kernels: no memory for the step's scratch")
        return loss


def fallback_note(why: str) -> str:
    """The one line the command says when ``kernel="auto"`` fits with torch's kernels instead."""
    return f"note: {why}: the fit ran torch's kernels (slower; other bytes in the last bits)"


@cache
def unavailable() -> str | None:
    """Why the kernels cannot run here (one line), or None: what ``kernel="auto"`` asks, once a
    process (a failed build is not retried for every fit)."""
    try:
        load()
    except Unavailable as e:
        return str(e)
    except (OSError, RuntimeError) as e:  # e.g. no home folder for the cache (Path.home)
        return f"native kernels: {e}"
    return None


@cache
def load(folder: Path | None = None) -> Kernels:
    """The kernels, built if need be into ``folder`` (default :func:`cache_dir`; once per process:
    later calls return the same object). :class:`Unavailable` where they cannot run. A cached
    library that does not load (cut short by a crash of the machine after its rename) is removed
    and built once more."""
    path = build(folder)
    try:
        return Kernels(path)
    except Unavailable as e:
        if "does not load" not in str(e):
            raise
        try:
            path.unlink()
        except OSError:
            raise e from None
        return Kernels(build(folder))
