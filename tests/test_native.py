"""encoder/native.py: the fused step's elementwise passes compiled: the same values as torch's
kernels within float rounding on both vector paths, the same fit, a cache that builds once, and a
one-line refusal where they cannot run."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import replace

import pytest
import torch

from inrcodec.config import FitConfig, record
from inrcodec.encoder import fused, native
from inrcodec.encoder.fit import Target, evaluate, kernel_of, train
from inrcodec.siren import Architecture, Siren

WIDTHS = (*range(1, 33), 40, 80, 144)  # every tail length of both vector widths, and the ladder's


def _can_build() -> str | None:
    """Why the kernels cannot be built here (the tests that need them skip, saying so), or None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"native kernels are x86-64 only, this is {platform.machine()}"
    if not (os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")):
        return "no C compiler on this machine"
    return None


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    if why := _can_build():
        pytest.skip(why)
    return native.build(tmp_path_factory.mktemp("native-cache"))


@pytest.fixture(params=[256, 512], ids=["avx2", "avx512"])
def kernels(library, request):
    best = native.Kernels(library).level
    if request.param > best:
        pytest.skip(f"this CPU has no AVX-512 (its best path: {best})")
    return native.Kernels(library, level=request.param)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_passes_give_torchs_values_and_write_nothing_past_their_rows(kernels, width):
    """Each tensor is the first rows of a larger one: the rows after it (sentinels) must stay."""
    gen = torch.Generator().manual_seed(width)
    big_z = torch.randn(39, width, generator=gen) * 20  # large arguments: the range reduction matters
    big_z[0] *= 2000  # beyond the shared reduction's limit (8192) in most lanes: libmvec's
    big_s = torch.full_like(big_z, float("nan"))
    z, s, b = big_z[:37], big_s[:37], torch.randn(width, generator=gen)
    tail_z, a = big_z[37:].clone(), (z + b).double()  # the same float sum the kernel makes
    kernels.bias_sincos(z, b, s)
    assert (s.double() - a.sin()).abs().max() <= 2.5e-7 and (z.double() - a.cos()).abs().max() <= 2.5e-7
    assert torch.equal(big_z[37:], tail_z) and big_s[37:].isnan().all()
    big_c, big_g = torch.randn(302, width, generator=gen), torch.randn(302, width, generator=gen)
    c, g, tail_c = big_c[:300], big_g[:300], big_c[300:].clone()
    want = c * g
    sums = kernels.mul_colsum(c, g)
    assert torch.equal(c, want)  # one float product each: exact
    assert torch.allclose(sums, want.double().sum(0).float(), rtol=1e-6, atol=1e-5)
    assert torch.equal(big_c[300:], tail_c)


def test_the_passes_refuse_what_they_cannot_read(kernels):
    z = torch.zeros(4, 8)
    with pytest.raises(ValueError, match="contiguous CPU tensors \\(z is not\\)"):
        kernels.bias_sincos(z.t(), torch.zeros(4), torch.zeros(8, 4))
    with pytest.raises(ValueError, match="float32 tensors \\(z is torch.float64\\)"):
        kernels.bias_sincos(z.double(), torch.zeros(8).double(), torch.zeros(4, 8).double())
    with pytest.raises(ValueError, match="b should be \\(8,\\), not \\(7,\\)"):
        kernels.bias_sincos(z, torch.zeros(7), torch.zeros(4, 8))
    with pytest.raises(ValueError, match="g should be"):
        kernels.mul_colsum(z, torch.zeros(4, 7))
    with pytest.raises(ValueError, match="z and s share memory"):
        kernels.bias_sincos(z, torch.zeros(8), z)
    both = torch.zeros(8, 8)
    with pytest.raises(ValueError, match="c and g share memory"):
        kernels.mul_colsum(both[:5], both[3:])  # overlapping rows
    kernels.mul_colsum(both[:4], both[4:])  # adjacent, not overlapping: fine
    with pytest.raises(ValueError, match="width 4097 is not in 1..4096"):
        kernels.mul_colsum(torch.zeros(1, 4097), torch.zeros(1, 4097))


@pytest.mark.parametrize("pe_levels", [0, 6])
def test_the_fused_loss_and_gradients_are_the_same_with_them(kernels, pe_levels):
    gen = torch.Generator().manual_seed(3)
    net = Siren(Architecture(hidden=24, layers=3, pe_levels=pe_levels), torch.Generator().manual_seed(1))
    coords = torch.rand(500, 2, generator=gen) * 2 - 1
    colours = torch.rand(500, 3, generator=gen) * 2 - 1
    idx = torch.randint(0, 500, (256,), generator=gen)
    pixel_w = torch.rand(256, generator=gen) * 2
    out = {}
    for name, k in (("torch", None), ("native", kernels)):
        ws = fused.Workspace()
        x, y = fused.gather(ws, fused.table(coords, colours, pe_levels), coords, colours, pe_levels, idx)
        loss, errors = fused.mse(net, x, y, ws, list(net.weights), list(net.biases), pixel_w, k)
        out[name] = (loss.detach(), errors, torch.autograd.grad(loss, list(net.parameters())))
    (loss, errors, grads), (ref, ref_errors, ref_grads) = out["native"], out["torch"]
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)
    assert torch.allclose(errors, ref_errors, rtol=1e-4, atol=1e-7)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-6 * float(r.abs().max())), float((g - r).abs().max())


@pytest.mark.parametrize(
    ("hidden", "layers", "pe_levels", "weighted"), [(24, 3, 6, True), (17, 2, 0, False), (5, 4, 2, True)]
)
def test_the_whole_step_gives_the_fused_loss_errors_and_gradients(kernels, hidden, layers, pe_levels, weighted):
    """fused.native_step (the step in one compiled call, products through torch's sgemm) against
    the fused step's autograd function with torch's kernels, on feature rows read from the batch
    table (strided rows): the same loss, per-pixel errors and every gradient within float noise;
    the gradients land in each parameter's .grad."""
    if kernels.sgemm is None:
        pytest.skip("this torch exports no sgemm")
    gen = torch.Generator().manual_seed(hidden)
    net = Siren(Architecture(hidden=hidden, layers=layers, pe_levels=pe_levels), torch.Generator().manual_seed(1))
    coords = torch.rand(700, 2, generator=gen) * 2 - 1
    colours = torch.rand(700, 3, generator=gen) * 2 - 1
    idx = torch.randint(0, 700, (333,), generator=gen)  # not a multiple of 16 rows
    pixel_w = torch.rand(333, generator=gen) * 2 if weighted else None
    ws = fused.Workspace()
    x, y = fused.gather(ws, fused.table(coords, colours, pe_levels), coords, colours, pe_levels, idx)
    assert x.stride(0) == x.shape[1] + 3  # rows of the batch table, not a contiguous copy
    ref, ref_errors = fused.mse(net, x, y, ws, list(net.weights), list(net.biases), pixel_w)
    ref_grads = torch.autograd.grad(ref, list(net.parameters()))
    ref, ref_errors = float(ref.detach()), ref_errors.clone()
    for _ in range(2):  # the second call writes into the first's .grad tensors
        loss, errors = fused.native_step(net, x, y, fused.Workspace(), pixel_w, kernels)
        assert float(loss) == pytest.approx(ref, rel=1e-5)
        assert torch.allclose(errors, ref_errors, rtol=1e-4, atol=1e-7)
        for p, r in zip(net.parameters(), ref_grads):
            assert torch.allclose(p.grad, r, rtol=1e-4, atol=1e-5 * float(r.abs().max())), float(
                (p.grad - r).abs().max()
            )


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_the_whole_step_on_threads_is_the_one_thread_step_within_float_noise_and_repeats(kernels, threads):
    """On torch's threads the step runs chunks of rows at once and sums their gradients in chunk
    order: within float noise of one chunk, every gradient and error, and the same bits on every
    call (a fit repeats at a thread count). 333 rows: chunks that end off the 16-row runs; 7
    threads: fewer chunks than threads (64 rows at least each)."""
    if kernels.sgemm is None:
        pytest.skip("this torch exports no sgemm")
    gen = torch.Generator().manual_seed(threads)
    net = Siren(Architecture(hidden=40, layers=3, pe_levels=6), torch.Generator().manual_seed(2))
    coords = torch.rand(600, 2, generator=gen) * 2 - 1
    colours = torch.rand(600, 3, generator=gen) * 2 - 1
    idx = torch.randint(0, 600, (333,), generator=gen)
    pixel_w = torch.rand(333, generator=gen) * 2
    ws = fused.Workspace()
    x, y = fused.gather(ws, fused.table(coords, colours, 6), coords, colours, 6, idx)
    before = torch.get_num_threads()
    results = []
    try:
        for n in (1, threads, threads):
            torch.set_num_threads(n)
            loss, errors = fused.native_step(net, x, y, fused.Workspace(), pixel_w, kernels)
            results.append((float(loss), errors.clone(), [p.grad.clone() for p in net.parameters()]))
    finally:
        torch.set_num_threads(before)
    (one, one_errors, one_grads), (many, errors, grads), (again, errors2, grads2) = results
    assert kernels.chunks_ok  # torch's wheels run libgomp, the runtime the library links
    assert many == again and torch.equal(errors, errors2) and all(map(torch.equal, grads, grads2))
    assert many == pytest.approx(one, rel=1e-6) and torch.allclose(errors, one_errors, rtol=1e-6, atol=0)
    for g, r in zip(grads, one_grads):
        assert torch.allclose(g, r, rtol=1e-5, atol=1e-6 * float(r.abs().max())), float((g - r).abs().max())
    assert not all(map(torch.equal, grads, one_grads))  # the chunks did run: other rounding


def _raw_step(kernels, x, y, weights, biases, threads):
    """``Kernels.siren_step`` on fresh buffers: the loss and every gradient (dW, then db)."""
    n, hidden = x.shape[0], [w.shape[0] for w in weights[:-1]]
    grads = ([torch.empty_like(w) for w in weights], [torch.empty_like(b) for b in biases])
    sines, cosines = [torch.empty(n, o) for o in hidden], [torch.empty(n, o) for o in hidden]
    buffers = (sines, cosines, torch.empty(n, max(hidden)), torch.empty(n, y.shape[1]), torch.empty(n))
    omegas = [30.0] + [1.0] * (len(hidden) - 1)
    loss = kernels.siren_step(x, y, None, weights, biases, omegas, grads, buffers, threads=threads)
    return loss, [*grads[0], *grads[1]]


@pytest.mark.parametrize("dims", [[26, 16, 64, 3], [26, 64, 16, 3]])
def test_chunks_on_threads_keep_their_own_rows_when_the_hidden_widths_differ(kernels, dims):
    """The whole step takes any widths (``Kernels.siren_step``): chunks of rows running at once
    on different layers of different widths must not share rows of g (each owns r0..r1 at the
    widest width). Both orders of a narrow and a wide layer, several calls: a race gives wrong
    gradients, not float noise."""
    if kernels.sgemm is None:
        pytest.skip("this torch exports no sgemm")
    gen = torch.Generator().manual_seed(5)
    weights = [torch.randn(o, i, generator=gen) / i**0.5 for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen) * 0.1 for o in dims[1:]]
    x, y = torch.rand(4096, dims[0], generator=gen) * 2 - 1, torch.rand(4096, 3, generator=gen)
    one, ref = _raw_step(kernels, x, y, weights, biases, 1)
    for _ in range(4):
        loss, grads = _raw_step(kernels, x, y, weights, biases, 4)
        assert loss == pytest.approx(one, rel=1e-6)
        for g, r in zip(grads, ref):
            assert torch.allclose(g, r, rtol=1e-4, atol=1e-5 * float(r.abs().max())), float((g - r).abs().max())


def test_a_native_fit_repeats_and_tracks_the_torch_kernels(crop, library, monkeypatch):
    """Same seed, same weights; within float noise of the fused step's fit. ``train`` takes the
    kernels from ``native.load`` (here the test's build)."""
    monkeypatch.setattr(native, "load", lambda: native.Kernels(library))
    target = Target.of(crop[:16, :16], torch.device("cpu"))
    base = FitConfig(steps=60, batch=256, lr=2e-3, lr_final=1e-4, seed=0, fused=True)
    nets = [Siren(Architecture(hidden=16, layers=2), torch.Generator().manual_seed(0)) for _ in range(3)]
    for net, kernel in zip(nets, ("native", "native", "torch")):
        train(net, target, replace(base, kernel=kernel), 60)
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[2].parameters()))  # it did run
    assert abs(evaluate(nets[0], target) - evaluate(nets[2], target)) < 0.05


def test_a_native_fit_runs_dense_steps_whole_and_masked_ones_through_autograd(crop, library, monkeypatch):
    """The whole step is the dense network's; with a mask (IMP's rounds) the fit keeps the
    autograd function (the gradient through the mask), and pruned weights stay zero."""
    from inrcodec.encoder.mask import Mask

    kernels = native.Kernels(library)
    if kernels.sgemm is None:
        pytest.skip("this torch exports no sgemm")
    monkeypatch.setattr(native, "load", lambda: kernels)
    calls = []
    real = fused.native_step
    monkeypatch.setattr(fused, "native_step", lambda *a: calls.append(1) or real(*a))
    target = Target.of(crop[:16, :16], torch.device("cpu"))
    cfg = FitConfig(steps=20, batch=64, seed=0, fused=True, kernel="native")
    net = Siren(Architecture(hidden=8, layers=2), torch.Generator().manual_seed(0))
    train(net, target, cfg, 20)
    assert len(calls) == 20 and all(p.grad is None for p in net.parameters())  # nothing left to add into
    keep = tuple(
        torch.rand(w.shape, generator=torch.Generator().manual_seed(i)) < 0.5 for i, w in enumerate(net.weights)
    )
    train(net, target, cfg, 20, mask=Mask(keep))
    assert len(calls) == 20  # not one more
    assert all((w[~k] == 0).all() for w, k in zip(net.weights, keep))


def test_the_config_takes_the_kernel_only_for_the_fused_step_and_records_it_only_when_not_torch():
    assert "kernel" not in record_fit(FitConfig(fused=True))  # the fingerprints of every earlier row stay
    assert record_fit(FitConfig(fused=True, kernel="native"))["kernel"] == "native"
    assert record_fit(FitConfig(fused=True, kernel="auto"))["kernel"] == "auto"
    for kernel in ("native", "auto"):
        with pytest.raises(ValueError, match="needs fused=True"):
            FitConfig(kernel=kernel)
    with pytest.raises(ValueError, match="torch, native or auto"):
        FitConfig(fused=True, kernel="cuda")


def test_auto_runs_native_where_it_can_and_torchs_kernels_elsewhere(crop, monkeypatch):
    """ "auto" is native on a CPU where the kernels load; torch's on a GPU, and where they cannot
    run (then the fit is exactly the torch kernels' fit, not a failure)."""
    auto = FitConfig(steps=30, batch=128, seed=0, fused=True, kernel="auto")
    monkeypatch.setattr(native, "unavailable", lambda: None)
    assert kernel_of(auto, "cpu") == "native" and kernel_of(auto, torch.device("cpu")) == "native"
    assert kernel_of(auto, "cuda") == "torch" and kernel_of(replace(auto, kernel="native"), "cuda:0") == "torch"
    assert kernel_of(replace(auto, kernel="torch"), "cpu") == "torch"
    assert kernel_of(FitConfig(), "cpu") == "torch"  # the unfused step: torch's autograd
    monkeypatch.setattr(native, "unavailable", lambda: "native kernels: no C compiler (set CC, or install gcc)")
    monkeypatch.setattr(native, "load", lambda: pytest.fail("auto must not load kernels that cannot run"))
    assert kernel_of(auto, "cpu") == "torch" and kernel_of(replace(auto, kernel="native"), "cpu") == "native"
    target = Target.of(crop[:16, :16], torch.device("cpu"))
    nets = [Siren(Architecture(hidden=8, layers=2), torch.Generator().manual_seed(0)) for _ in range(2)]
    for net, kernel in zip(nets, ("auto", "torch")):
        train(net, target, replace(auto, kernel=kernel), 30)
    assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters()))


def test_an_encode_records_the_kernels_that_ran(crop, library, monkeypatch):
    """The stats (and so ``--json`` and the benchmark's rows) name the kernels the fit ran."""
    from helpers import tiny_config

    from inrcodec.encoder.pipeline import encode_array

    monkeypatch.setattr(native, "load", lambda: native.Kernels(library))
    monkeypatch.setattr(native, "unavailable", lambda: None)
    cfg = tiny_config(steps=20, density=1.0, qat_steps=2)
    auto = replace(cfg, fit=replace(cfg.fit, fused=True, kernel="auto"))
    assert encode_array(crop[:16, :16], auto, "cpu").stats["kernel"] == "native"
    assert encode_array(crop[:16, :16], cfg, "cpu").stats["kernel"] == "torch"


def test_unavailable_says_why_once_a_process(monkeypatch):
    native.unavailable.cache_clear()
    calls = []

    def refuse():
        calls.append(1)
        raise native.Unavailable("native kernels: no C compiler (set CC, or install gcc)")

    monkeypatch.setattr(native, "load", refuse)
    try:
        assert native.unavailable() == "native kernels: no C compiler (set CC, or install gcc)"
        assert native.unavailable() == "native kernels: no C compiler (set CC, or install gcc)" and calls == [1]
    finally:
        native.unavailable.cache_clear()


def record_fit(fit: FitConfig) -> dict:
    from inrcodec.config import EncodeConfig

    return record(EncodeConfig(fit=fit))["fit"]


def test_a_compiler_without_openmp_builds_the_library_without_it_and_the_step_runs_one_chunk(tmp_path, monkeypatch):
    """A compiler that cannot link OpenMP (clang without libomp) still gets the kernels: built
    without it, the whole step runs as one chunk whatever torch's threads (the one-thread bits)."""
    if why := _can_build():
        pytest.skip(why)
    cc = shutil.which(os.environ.get("CC", "") or "cc") or shutil.which("gcc")
    wrapper = tmp_path / "cc-no-openmp"
    wrapper.write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && exit 1; done\nexec {cc} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    kernels = native.Kernels(native.build(tmp_path / "cache"))
    assert not kernels.chunks_ok
    if kernels.sgemm is None:
        return
    gen = torch.Generator().manual_seed(9)
    dims = [26, 24, 24, 3]
    weights = [torch.randn(o, i, generator=gen) / i**0.5 for i, o in zip(dims, dims[1:])]
    biases = [torch.randn(o, generator=gen) * 0.1 for o in dims[1:]]
    x, y = torch.rand(1024, dims[0], generator=gen) * 2 - 1, torch.rand(1024, 3, generator=gen)
    one, ref = _raw_step(kernels, x, y, weights, biases, 1)
    many, grads = _raw_step(kernels, x, y, weights, biases, 4)
    assert many == one and all(map(torch.equal, grads, ref))


def test_the_build_is_cached_and_written_whole(tmp_path):
    if why := _can_build():
        pytest.skip(why)
    first = native.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(tmp_path) == first and first.stat().st_mtime_ns == stamp  # not compiled again
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary left behind


def test_a_cached_library_cut_short_is_built_again(tmp_path):
    """A crash after the rename can leave a cached library that does not load: ``load`` removes it
    and builds once more, instead of the kernels being unavailable from then on."""
    if why := _can_build():
        pytest.skip(why)
    lib = native.build(tmp_path)
    whole = lib.read_bytes()
    lib.write_bytes(whole[:100])
    kernels = native.load.__wrapped__(tmp_path)  # past the per-process cache
    assert kernels.level in (256, 512) and lib.stat().st_size == len(whole)  # the library whole again


def test_where_they_cannot_run_it_says_why_in_one_line(tmp_path, monkeypatch):
    buildable, cc = _can_build() is None, os.environ.get("CC")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(native.Unavailable, match="no C compiler") as e:
        native.build(tmp_path)
    assert "\n" not in str(e.value)
    broken = tmp_path / "cc"  # a "compiler" that runs and fails
    broken.write_text("#!/bin/sh\necho 'cc: error: nothing compiles here' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    with pytest.raises(native.Unavailable, match="failed: cc: error: nothing compiles here") as e:
        native.build(tmp_path / "cache")
    assert "\n" not in str(e.value) and not any((tmp_path / "cache").iterdir())
    linker = tmp_path / "ld-fails"  # the line that names the missing library, not collect2's
    linker.write_text(
        "#!/bin/sh\necho '/usr/bin/ld: cannot find -lmvec: No such file or directory' >&2\n"
        "echo 'collect2: error: ld returned 1 exit status' >&2\nexit 1\n"
    )
    linker.chmod(0o755)
    monkeypatch.setenv("CC", str(linker))
    with pytest.raises(native.Unavailable, match="failed: /usr/bin/ld: cannot find -lmvec"):
        native.build(tmp_path / "cache")
    if buildable:  # a cache that cannot be made: a file where its folder would go
        if cc:  # back to the machine's compiler
            monkeypatch.setenv("CC", cc)
        else:
            monkeypatch.delenv("CC")
        (tmp_path / "a-file").write_text("")
        with pytest.raises(native.Unavailable, match="cannot write the build to .*a-file/cache"):
            native.build(tmp_path / "a-file" / "cache")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(native.Unavailable, match="x86-64 only"):
        native.build(tmp_path)
