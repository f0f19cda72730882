"""format/checkerboard.py: the context model's integer side, its tables and its coded latents."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import context_model, laplace_mass, latent_pyramid

from inrcodec.format import checkerboard as cb
from inrcodec.format.entropy import PRECISION
from inrcodec.format.errors import FormatError
from inrcodec.format.latent import level_sizes


@pytest.mark.parametrize("index", [0, 5, 16 * 20 + 3, 16 * 40 + 8, 16 * 63 + 15])
def test_tables_sum_to_one_keep_every_symbol_and_follow_the_laplace(index):
    bound = 12
    freqs = cb.table(index, bound)
    assert int(freqs.sum()) == 1 << PRECISION and int(freqs.min()) >= 1
    u, f = divmod(index, cb.MU_STEPS)
    b = 0.05 * 2 ** (u / 6)
    mass = laplace_mass(np.arange(-bound, bound + 1), f / cb.MU_STEPS, b)
    mass /= mass.sum()  # the table holds the residuals up to the bound
    big = mass > 1e-3  # where the table's floor of one count does not dominate
    assert np.allclose(freqs[big] / 2**PRECISION, mass[big], rtol=2e-3, atol=2e-5)


@pytest.mark.parametrize("channels", [1, 2])
def test_latents_round_trip_through_the_range_coder(channels):
    sizes = level_sizes(20, 27, 3)
    lat = latent_pyramid(sizes, channels)
    arm = context_model().integers()
    data = cb.encode_latents(lat, arm)
    back = cb.decode_latents(data, sizes, channels, arm)
    assert all(np.array_equal(a, b) for a, b in zip(lat, back))
    assert cb.encode_latents(back, arm) == data  # one code per content


def test_all_zero_latents_of_a_zero_model_are_nothing_but_the_bound():
    sizes = level_sizes(8, 8, 2)
    lat = [np.zeros((1, h, w), np.int64) for h, w in sizes]
    arm = [np.zeros(s, np.int64) for s in cb.arm_shapes(4, 2)]
    assert cb.encode_latents(lat, arm) == cb.BOUND.pack(0)
    assert all(not q.any() for q in cb.decode_latents(cb.BOUND.pack(0), sizes, 1, arm))
    with pytest.raises(FormatError):
        cb.decode_latents(cb.BOUND.pack(0) + b"\0\0\0\0", sizes, 1, arm)


def test_corrupt_latent_block_is_refused():
    sizes = level_sizes(16, 16, 2)
    lat = latent_pyramid(sizes)
    arm = context_model(levels=2).integers()
    data = cb.encode_latents(lat, arm)
    with pytest.raises(FormatError):
        cb.decode_latents(data + b"\0\0\0\0", sizes, 1, arm)
    with pytest.raises(FormatError):
        cb.decode_latents(data[:-1], sizes, 1, arm)


def test_grids_down_to_one_latent_round_trip():
    """A 1x1 coarsest grid has no non-anchor half: an empty pass codes nothing."""
    sizes = [(3, 5), (2, 3), (1, 2), (1, 1)]
    lat = latent_pyramid(sizes, seed=3)
    arm = context_model(levels=4).integers()
    back = cb.decode_latents(cb.encode_latents(lat, arm), sizes, 1, arm)
    assert all(np.array_equal(a, b) for a, b in zip(lat, back))


def _int64_network(feats, arm, level):
    """The network as docs/format.md words it, in int64 arithmetic throughout (NumPy's own product)."""
    w1, b1, w2, b2, w3, b3, offsets = arm
    a = np.clip(feats, -cb.MAX_INPUT, cb.MAX_INPUT - 1) << cb.FRAC
    a = np.clip(a @ w1.T + (b1 << cb.FRAC), 0, cb.MAX_ACTIVATION << cb.FRAC) >> cb.FRAC
    a = np.clip(a @ w2.T + (b2 << cb.FRAC), 0, cb.MAX_ACTIVATION << cb.FRAC) >> cb.FRAC
    z = a @ w3.T + (b3 << cb.FRAC)
    mu16 = (z[:, 0] + (1 << (2 * cb.FRAC - 5))) >> (2 * cb.FRAC - 4)
    u = np.clip((6 * (z[:, 1] + (int(offsets[level]) << cb.FRAC)) + (1 << (2 * cb.FRAC - 1))) >> (2 * cb.FRAC), 0, 63)
    return mu16 >> 4, cb.MU_STEPS * u + (mu16 & (cb.MU_STEPS - 1)), z


def test_the_network_in_float64_is_the_int64_network_at_the_bounds():
    """Float64 BLAS, float clipping and flooring give int64 arithmetic's integers wherever the
    format's bounds hold: the widest network (255), the largest weights and contexts of both
    signs; a second network with every hidden unit driven to its clip, where the last layer's
    sums reach about 2^44."""
    rng = np.random.default_rng(0)
    top, hidden = cb.MAX_VALUE - 1, 255
    extremes = [-top, -1, 0, 1, top]
    arm = [rng.choice(extremes, size=s).astype(np.int64) for s in cb.arm_shapes(hidden, 2, cb.FOUR_PASS)]
    arm[-1] = np.array([-top, top])
    saturated = [a.copy() for a in arm]
    saturated[2][:], saturated[3][:] = top, top  # every second-layer unit at MAX_ACTIVATION
    saturated[4][0], saturated[4][1] = top, -top
    feats = rng.choice([-(1 << 20), -cb.MAX_INPUT, -1, 0, 1, cb.MAX_INPUT - 1, 1 << 20], size=(400, 20))
    reached = 0
    for net in (arm, saturated):
        for level in (0, 1):
            base, index, z = _int64_network(feats, net, level)
            got = cb.int_params(feats, net, level)
            assert np.array_equal(got[0], base) and np.array_equal(got[1], index)
            reached = max(reached, int(np.abs(z).max()))
    assert reached > 2**43  # the test does reach the range


def _table_by_hand(index, bound):
    """One table, as docs/format.md words it: the Laplace's integer CDF at sixteenths, then the
    frequencies with the remainder on the most likely residual."""
    u, f = divmod(index, cb.MU_STEPS)
    powers = [1 << 32]
    for _ in range(cb.MU_STEPS * (bound + 2)):
        powers.append(powers[-1] * cb.DECAYS[u] >> 16)

    def cdf(e):
        return powers[abs(e)] >> 1 if e <= 0 else (1 << 32) - (powers[abs(e)] >> 1)

    r = range(-bound, bound + 1)
    weight = [cdf(16 * x + 8 - f) - cdf(16 * x - 8 - f) for x in r]
    spare = (1 << PRECISION) - len(weight)
    freqs = [1 + w * spare // sum(weight) for w in weight]
    freqs[weight.index(max(weight))] += (1 << PRECISION) - sum(freqs)
    return freqs


@pytest.mark.parametrize("bound", [1, 6, 40])
def test_tables_built_together_are_each_table_by_hand(bound):
    indices = list(range(cb.SCALES * cb.MU_STEPS))
    built = cb.tables(indices[::-1], bound)[::-1]  # in any order
    for index in indices[:: 1 if bound < 40 else 7]:
        assert built[index].tolist() == _table_by_hand(index, bound), index


@pytest.mark.parametrize("scheme", [cb.CHECKERBOARD, cb.FOUR_PASS], ids=["checkerboard", "four-pass"])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 4), (3, 1), (5, 3), (6, 7), (9, 8)])
def test_a_pass_in_block_order_is_the_network_of_its_row_major_contexts(scheme, h, w):
    """pass_params computes the contexts by parity block and puts the outputs back in row-major
    order: the same (floor(mu), table) at every position as the int64 network on each latent's
    context gathered by hand."""
    rng = np.random.default_rng(h * 10 + w)
    q = rng.integers(-6, 7, (2, h, w))
    arm = context_model(levels=2).integers()
    arm[0] = cb.widen_first_layer(arm[0], scheme)
    seen = set()
    for parent in (None, rng.integers(-6, 7, (2, (h + 1) // 2, (w + 1) // 2))):
        for group in range(len(scheme.groups)):
            layout = cb.Layout.of(scheme, h, w, group)
            got = cb.pass_params(q, parent, cb.Network(arm), 1, scheme, layout)
            where = np.argwhere(scheme.group_of(h, w) == group)
            contexts = [_context_by_hand(q, parent, scheme, group, ch, i, j) for ch in range(2) for i, j in where]
            want = _int64_network(np.array(contexts, np.int64).reshape(-1, scheme.features), arm, 1)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
            seen.update(want[1].tolist())
    assert len(seen) > 1  # the tables do differ by position


def test_a_bound_larger_than_the_residuals_need_is_refused():
    """The stream is the latents' one code: a valid code of the same latents under a looser
    bound decodes, but is not that code (and is refused for it); the same words under another
    bound make the range decoder complain (an AssertionError in constriction), a FormatError."""
    sizes = level_sizes(16, 16, 2)
    lat = latent_pyramid(sizes)
    arm = context_model(levels=2).integers()
    data = cb.encode_latents(lat, arm)
    (bound,) = cb.BOUND.unpack_from(data)
    looser = cb._code(cb._plan(lat, arm), bound + 1)
    with pytest.raises(FormatError, match=f"bound {bound + 1}, but the residuals need {bound}"):
        cb.decode_latents(looser, sizes, 1, arm)
    with pytest.raises(FormatError):
        cb.decode_latents(cb.BOUND.pack(bound + 1) + data[cb.BOUND.size :], sizes, 1, arm)


def test_any_changed_latent_words_are_a_format_error_and_nothing_else():
    sizes = level_sizes(16, 16, 2)
    lat = latent_pyramid(sizes)
    arm = context_model(levels=2).integers()
    data = cb.encode_latents(lat, arm)
    rng = np.random.default_rng(1)
    for _ in range(200):
        words = bytearray(data)
        for _ in range(2):
            words[rng.integers(cb.BOUND.size, len(words))] = rng.integers(256)
        try:
            back = cb.decode_latents(bytes(words), sizes, 1, arm)
            assert all(np.array_equal(a, b) for a, b in zip(lat, back))  # only an unchanged block decodes
        except FormatError:
            pass


def test_a_pass_cache_gives_the_plan_of_the_latents_it_is_asked_about():
    """Outputs are reused only while a pass's inputs are unchanged: after moving a parent, an
    anchor or a non-anchor, and after changing the network, the cached plan is the plan."""
    sizes = level_sizes(12, 15, 3)
    lat = latent_pyramid(sizes, 2)
    arm = context_model(levels=3).integers()
    cache = cb.PassCache()
    rng = np.random.default_rng(3)
    before = cb._plan(lat, arm, cache=cache)
    for step in range(8):
        if step % 4 == 3:  # the network's per-level scale offsets up by one unit: every table moves
            arm = [a.copy() for a in arm]
            arm[-1] += 256
        else:
            level = int(rng.integers(len(lat)))
            lat[level][tuple(rng.integers(s) for s in lat[level].shape)] += 1
        cached, fresh = cb._plan(lat, arm, cache=cache), cb._plan(lat, arm)
        for (l1, r1, i1), (l2, r2, i2) in zip(cached, fresh, strict=True):
            assert l1 == l2 and np.array_equal(r1, r2) and np.array_equal(i1, i2)
        changed = sum(
            not (np.array_equal(r1, r2) and np.array_equal(i1, i2)) for (_, r1, i1), (_, r2, i2) in zip(before, fresh)
        )
        assert changed >= (len(fresh) if step % 4 == 3 else 1), step  # each step changed what it must
        before = fresh


@pytest.mark.parametrize("scheme", [cb.CHECKERBOARD, cb.FOUR_PASS], ids=["checkerboard", "four-pass"])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 4), (3, 1), (5, 3), (6, 7)])
def test_each_position_is_in_the_group_of_its_row_and_column_parities(scheme, h, w):
    by_hand = [
        [next(g for g, ps in enumerate(scheme.groups) if (i % 2, j % 2) in ps) for j in range(w)] for i in range(h)
    ]
    assert scheme.group_of(h, w).tolist() == by_hand


def _context_by_hand(q, parent, scheme, group, ch, i, j):
    """One latent's context as docs/format.md words it, position by position."""
    c, h, w = q.shape
    of = scheme.group_of(h, w)
    row = []
    for di in (-1, 0, 1):  # the parent's 3x3 (zeros for the coarsest level and outside its grid)
        for dj in (-1, 0, 1):
            pi, pj = i // 2 + di, j // 2 + dj
            inside = parent is not None and 0 <= pi < parent.shape[1] and 0 <= pj < parent.shape[2]
            row.append(int(parent[ch, pi, pj]) if inside else 0)
    for di, dj in scheme.window:  # own-level neighbours decoded by an earlier group
        ni, nj = i + di, j + dj
        row.append(int(q[ch, ni, nj]) if 0 <= ni < h and 0 <= nj < w and of[ni, nj] < group else 0)
    row += [int(group == k) for k in range(len(scheme.groups) - 1)]
    return row


def test_a_scheme_must_place_each_parity_in_one_group():
    with pytest.raises(ValueError, match="each"):
        cb.Scheme((((0, 0), (1, 1)), ((0, 1),)), cb.CROSS)  # (1, 0) in no group
    with pytest.raises(ValueError, match="each"):
        cb.Scheme((((0, 0), (1, 1)), ((0, 1), (1, 0), (0, 0))), cb.CROSS)  # (0, 0) twice


@pytest.mark.parametrize("scheme", [cb.CHECKERBOARD, cb.FOUR_PASS], ids=["checkerboard", "four-pass"])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 4), (3, 1), (4, 1), (5, 3), (6, 7)])
def test_contexts_are_the_specified_integers_in_channel_row_column_order(scheme, h, w):
    rng = np.random.default_rng(h * 10 + w)
    q = rng.integers(-40, 41, (2, h, w))
    for parent in (None, rng.integers(-40, 41, (2, (h + 1) // 2, (w + 1) // 2))):
        for group in range(len(scheme.groups)):
            where = np.argwhere(scheme.group_of(h, w) == group)
            expected = [_context_by_hand(q, parent, scheme, group, ch, i, j) for ch in range(2) for i, j in where]
            got = cb.features(q, parent, scheme, group)
            assert got.shape == (len(expected), scheme.features)
            assert got.tolist() == expected
    with pytest.raises(ValueError, match="parent has 1 channels, the level 2"):
        cb.features(q, np.zeros((1, (h + 1) // 2, (w + 1) // 2), np.int64), scheme, 0)
