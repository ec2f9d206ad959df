"""The executor interpreter of layer plans: the same ops, real tensors, a small mesh.

:func:`execute_layout` runs the prefill of a batch of prompts and decode steps of a model
through the very op lists the closed form evaluates (:func:`~plummer.layout._plan.prefill_plan`,
:func:`~plummer.layout._plan.decode_plan`). Every op runs on the executor with real data,
one after another (the closed form's barrier, :mod:`plummer.layout._evaluate`): a kernel op
through its kernel's program with the tensors the layer has at that point; local work as
one PE task per core that computes on the core's tiles with the work the plan charges
(rule 6). Between the ops the tensors are kept whole (numpy), so the interpreter also checks
the data flow of the plan: the result must equal :mod:`plummer.layout._reference` to fp32
tolerance. Every op's executed cycles are compared with its closed form; a layer's executed
cycles are ``launch + sum (executed - launch)`` over its op runs.

Offline weight preparation (free at run time, as in any deployment): the attention scale
``1 / sqrt(d)`` is folded into ``W_q``, and with ``G > H_kv`` head groups the K/V columns
of each KV head are repeated for every group that reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.kernels import get_kernel
from plummer.layout import _reference as ref
from plummer.layout._arrays import PhaseArrays, layout_arrays, region_layer_counts, region_origins
from plummer.layout._evaluate import (
    OpCost,
    _kernel_name,
    _kernel_params,
    evaluate_ops,
    layer_cycles,
)
from plummer.layout._layout import Layout
from plummer.layout._metrics import evaluate
from plummer.layout._ops import Op
from plummer.layout._plan import ceil_div, decode_plan, groups, prefill_plan
from plummer.mesh import Mesh
from plummer.model import ModelSpec

#: Largest grid side the interpreter runs (the executor is pure Python).
MAX_SIDE = 16


@dataclass(frozen=True)
class OpRun:
    """One executed run of an op: executed and predicted cycles (the launch excluded)."""

    phase: str
    layer: int
    op: str
    executed: float
    predicted: float
    group: int = 0

    @property
    def rel_error(self) -> float:
        """``|predicted - executed| / executed``."""
        return abs(self.predicted - self.executed) / self.executed if self.executed else 0.0


@dataclass
class LayoutRun:
    """What :func:`execute_layout` measured: every op run, per-phase layer cycles (executed
    and predicted), and the largest deviation of the outputs from the reference."""

    runs: list[OpRun] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    prefill_error: float = 0.0
    decode_error: float = 0.0

    @property
    def max_op_error(self) -> float:
        """The largest relative error of one op run."""
        return max((r.rel_error for r in self.runs), default=0.0)

    @property
    def max_layer_error(self) -> float:
        """The largest relative error of a layer's cycles."""
        return max((row["rel_error"] for row in self.layers), default=0.0)

    @property
    def max_phase_error(self) -> float:
        """The largest relative error of a phase's total (prefill TTFT, one decode step)."""
        return max((row["rel_error"] for row in self.phases), default=0.0)


def _tiles(matrix: np.ndarray, rows: int, cols: int) -> list[list[np.ndarray]]:
    """``matrix`` cut into ``rows`` x ``cols`` equal tiles ``[y][x]`` (sizes must divide)."""
    r, c = matrix.shape[0] // rows, matrix.shape[1] // cols
    return [[matrix[y * r:(y + 1) * r, x * c:(x + 1) * c] for x in range(cols)] for y in range(rows)]


def _padded(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=np.float32)
    out[:matrix.shape[0], :matrix.shape[1]] = matrix
    return out


class _Interpreter:
    """Runs ops of one phase, one layer at a time, checking each against the closed form."""

    def __init__(self, spec: HardwareSpec, model: ModelSpec, phase: str, ph: PhaseArrays,
                 ops: Sequence[Op], costs: dict[str, OpCost], result: LayoutRun) -> None:
        self.spec, self.model, self.phase = spec, model, phase
        self.p, self.q = int(ph.p.reshape(-1)[0]), int(ph.q.reshape(-1)[0])
        self.groups = {k: int(np.asarray(v).reshape(-1)[0]) for k, v in groups(model, ph).items()}
        self.head_groups = int(ph.head_groups.reshape(-1)[0])
        self.ops = {op.name: op for op in ops}
        self.order = list(ops)
        self.costs = costs
        self.result = result
        self.launch = spec.launch_overhead_cycles
        self.layer = 0
        self.group = 0  # the head group whose ops run now: groups run at once, on their columns

    # ------------------------------------------------------------------ runners
    def _scalar(self, value: Any) -> int:
        return int(np.asarray(value).reshape(-1)[0])

    def _record(self, name: str, executed_with_launch: float) -> None:
        cost = self.costs[name]
        predicted = float(cost.cycles.reshape(-1)[0]) - cost.launch
        self.result.runs.append(OpRun(self.phase, self.layer, name, executed_with_launch - self.launch,
                                      predicted, self.group))

    def kernel(self, name: str, operands: Sequence[np.ndarray], combine: str = "sum") -> np.ndarray:
        """Run op ``name``'s kernel on ``operands`` (padded as the kernel requires) and return
        its output (the executor's, cropped to the operands' sizes)."""
        op = self.ops[name]
        code = None if op.codes is None else self._scalar(op.codes)
        family, algo = _kernel_name(op, code)
        raw = {k: np.asarray(v).reshape(-1)[:1] for k, v in op.params.items()}
        params = {k: (v if isinstance(v, str) else int(np.asarray(v).reshape(-1)[0]))
                  for k, v in _kernel_params(op, algo, raw).items()}
        kernel = get_kernel(family, algo)
        extra = {"combine": combine} if family == "allreduce" else {}
        if family == "gemm":
            a, b = operands
            m, k, n = params["m"], params["k"], params["n"]
            shape_b = (n, k) if algo == "gemm-t" else (k, n)
            run = kernel.execute(self.spec, operands=(_padded(a, m, k), _padded(b, *shape_b)), **params)
            out = run.output[:a.shape[0], :(b.shape[0] if algo == "gemm-t" else b.shape[1])]
        elif family == "allreduce":
            (data,) = operands
            n = params["n"]
            full = np.zeros(data.shape[:2] + (n,), dtype=np.float32)
            full[..., :data.shape[2]] = data
            run = kernel.execute(self.spec, operands=(full,), **params, **extra)
            out = run.output[..., :data.shape[2]]
        else:
            (matrix,) = operands
            run = kernel.execute(self.spec, operands=(matrix,), **params)
            out = run.output
        if not run.correct:
            raise RuntimeError(f"op '{name}': the executor's result differs from numpy")
        self._record(name, run.execution.cycles)
        return out

    def local(self, name: str, tiles: list[list[Sequence[np.ndarray]]],
              fn: Callable[..., np.ndarray] | list[list[Callable[..., np.ndarray]]]) -> list[list[np.ndarray]]:
        """Run op ``name``'s local work: core ``(x, y)`` of a mesh of ``tiles``' shape computes
        ``fn(*tiles[y][x])`` (or ``fn[y][x](...)``, a function per core) as one PE task with the
        work the plan charges; returns the outputs ``[y][x]``."""
        op = self.ops[name]
        work = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in op.params.items()}
        rows, cols = len(tiles), len(tiles[0])
        mesh = Mesh(self.spec, cols, rows)
        for y in range(rows):
            for x in range(cols):
                names = []
                for i, tile in enumerate(tiles[y][x]):
                    mesh.load((x, y), f"in{i}", tile)
                    names.append(f"in{i}")
                task = fn[y][x] if isinstance(fn, list) else fn
                mesh.compute((x, y), names, "out", task, fmas=work["fmas"], loops=work["loops"],
                             vector_ops=work["vector_ops"])
        execution = mesh.run()
        self._record(name, execution.cycles)
        return [[execution.tile((x, y), "out") for x in range(cols)] for y in range(rows)]

    def layer_done(self) -> None:
        """Compare the layer's executed cycles with its closed form: the ops' runs add up in
        sequence, except that the head groups' runs of one op happen at once (the k-th run of
        every group together, the slowest of them counting)."""
        runs = [r for r in self.result.runs if r.phase == self.phase and r.layer == self.layer]
        by_op: dict[tuple[str, int], list[float]] = {}
        for r in runs:
            by_op.setdefault((r.op, r.group), []).append(r.executed)
        executed = self.launch
        for name in dict.fromkeys(r.op for r in runs):
            lists = [v for (op, _), v in by_op.items() if op == name]
            executed += sum(max(column) for column in zip(*lists, strict=True))
        predicted = float(np.asarray(layer_cycles(self.order, self.costs, self.launch)).reshape(-1)[0])
        self.result.layers.append({"phase": self.phase, "layer": self.layer, "executed": executed,
                                   "predicted": predicted,
                                   "rel_error": abs(predicted - executed) / executed})
        self.layer += 1


# ---------------------------------------------------------------------- prefill
def _prefill_layer(it: _Interpreter, w: ref.LayerWeights, x: np.ndarray, length: int,
                   batch: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """One prefill layer on ``x`` (``batch`` sequences of ``length_padded`` tokens, E
    columns); returns the new residual stream and each sequence's K and V."""
    model, p, q = it.model, it.p, it.q
    e, h, hkv, d = model.hidden, model.heads, model.kv_heads, model.head_dim
    gr = it.groups
    g_count, pg, eta, rho = it.head_groups, gr["pg"], gr["eta"], gr["rho"]
    lp = ceil_div(length, q).item() * q
    tokens = batch * lp
    cols = ceil_div(e, p).item()
    positions = np.tile(np.arange(lp), batch)

    def stream(matrix: np.ndarray, width: int) -> list[list[np.ndarray]]:
        return _tiles(_padded(matrix, tokens, width), q, p)

    def gather(tiles: list[list[np.ndarray]], width: int) -> np.ndarray:
        return np.block(tiles)[:, :width]

    def norm(prefix: str, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        xt = stream(x, cols * p)
        part = it.local(f"{prefix}.sumsq", [[(t,) for t in row] for row in xt],
                        lambda t: (t * t).sum(axis=1))
        sums = it.kernel(f"{prefix}.allreduce", [np.array(part)])
        wt = _tiles(_padded(weight[None, :], 1, cols * p), 1, p)[0]
        scaled = it.local(f"{prefix}.scale", [[(xt[y][j], sums[y, j], wt[j]) for j in range(p)] for y in range(q)],
                          lambda t, s, wv: t / np.sqrt(s / e + ref.EPS)[:, None] * wv)
        return gather(scaled, e)

    xn = norm("norm1", x, w.norm1)
    scale = 1.0 / np.sqrt(d)
    qm = it.kernel("q_proj", [xn, w.wq * scale])
    kv_cols = [(g * hkv // g_count) if rho > 1 else None for g in range(g_count)]
    wk = np.concatenate([w.wk[:, j * d:(j + 1) * d] for j in kv_cols], axis=1) if rho > 1 else w.wk
    wv = np.concatenate([w.wv[:, j * d:(j + 1) * d] for j in kv_cols], axis=1) if rho > 1 else w.wv
    bk = np.concatenate([w.bk[j * d:(j + 1) * d] for j in kv_cols]) if rho > 1 else w.bk
    bv = np.concatenate([w.bv[j * d:(j + 1) * d] for j in kv_cols]) if rho > 1 else w.bv
    km = it.kernel("kv_proj", [xn, wk])
    vm = it.kernel("kv_proj", [xn, wv])
    if it._scalar(it.ops["qkv.bias"].repeats):
        both = np.concatenate([qm, km, vm], axis=1)
        width = ceil_div(both.shape[1], p).item() * p
        bias = np.concatenate([w.bq * scale, bk, bv])
        bt = _tiles(_padded(bias[None, :], 1, width), 1, p)[0]
        out = it.local("qkv.bias", [[(t, bt[j]) for j, t in enumerate(row)] for row in stream(both, width)],
                       lambda t, b: t + b)
        both = gather(out, both.shape[1])
        qm, km, vm = np.split(both, [qm.shape[1], qm.shape[1] + km.shape[1]], axis=1)
    # RoPE on interleaved pairs of Q and K: each core rotates its tile's pairs
    qk = np.concatenate([qm, km], axis=1)
    width = ceil_div(qk.shape[1], p).item() * p
    tile_w = width // p
    if tile_w % 2 or d % 2:
        raise SpecError("RoPE needs an even head dim and tile width (interleaved pairs on one core)")
    rows_per = tokens // q
    tiles = _tiles(_padded(qk, tokens, width), q, p)
    rotate = [[_rotation(positions[y * rows_per:(y + 1) * rows_per], np.arange(j * tile_w, (j + 1) * tile_w) % d,
                         np.arange(j * tile_w, (j + 1) * tile_w) < qk.shape[1], d)
               for j in range(p)] for y in range(q)]
    qk = np.block(it.local("rope", [[(tiles[y][j],) for j in range(p)] for y in range(q)], rotate))[:, :qk.shape[1]]
    qm, km = qk[:, :qm.shape[1]], qk[:, qm.shape[1]:]

    # attention, per group, sequence and KV head of the group
    share = h // hkv
    dp = ceil_div(d, pg).item() * pg
    om = np.zeros((tokens, h * d), dtype=np.float32)
    caches = []
    visible_key = np.arange(lp) < length
    for b in range(batch):
        rows = slice(b * lp, (b + 1) * lp)
        if rho > 1:  # the cache holds every KV head once: group g's copy of head g // rho
            first = [j * rho for j in range(hkv)]
            kc = np.concatenate([km[rows, g * d:(g + 1) * d] for g in first], axis=1)
            vc = np.concatenate([vm[rows, g * d:(g + 1) * d] for g in first], axis=1)
        else:
            kc, vc = km[rows], vm[rows]
        caches.append((kc[:length], vc[:length]))
        for g in range(g_count):
            it.group = g
            heads = range(g * eta, (g + 1) * eta)
            kv_heads = sorted({hh // share for hh in heads})
            for j in kv_heads:
                mine = [hh for hh in heads if hh // share == j]
                col = (g if rho > 1 else j) * d
                a = np.concatenate([qm[rows, hh * d:(hh + 1) * d] for hh in mine])
                kj = km[rows, col:col + d]
                vj = vm[rows, col:col + d]
                scores = it.kernel("scores", [_padded(a, a.shape[0], dp), _padded(kj, lp, dp)])
                qpos = np.tile(np.arange(lp), len(mine))
                mask = (np.arange(lp)[None, :] <= qpos[:, None]) & visible_key[None, :]
                probs = _softmax(it, scores, mask, pg)
                vj = _skew(it, _padded(vj, lp, dp), pg)
                o = it.kernel("pv", [probs, vj])[:, :d]
                for i, hh in enumerate(mine):
                    om[rows, hh * d:(hh + 1) * d] = o[i * lp:(i + 1) * lp]
    it.group = 0
    attn = it.kernel("o_proj", [om, w.wo])
    x = gather(it.local("residual1", [[(a, c) for a, c in zip(ra, rc, strict=True)]
                                      for ra, rc in zip(stream(x, cols * p), stream(attn, cols * p), strict=True)],
                        np.add), e)
    xn = norm("norm2", x, w.norm2)
    up = it.kernel("up_gate", [xn, w.w_up])
    gate = it.kernel("up_gate", [xn, w.w_gate])
    fcols = ceil_div(model.ffn, p).item() * p
    act = gather(it.local("silu_mul", [[(gt, ut) for gt, ut in zip(rg, ru, strict=True)]
                                       for rg, ru in zip(stream(gate, fcols), stream(up, fcols), strict=True)],
                          lambda g_, u_: ref.silu(g_) * u_), model.ffn)
    down = it.kernel("down", [act, w.w_down])
    x = gather(it.local("residual2", [[(a, c) for a, c in zip(ra, rc, strict=True)]
                                      for ra, rc in zip(stream(x, cols * p), stream(down, cols * p), strict=True)],
                        np.add), e)
    it.layer_done()
    return x, caches


def _skew(it: _Interpreter, v: np.ndarray, pg: int) -> np.ndarray:
    """P.V's on-device skew of V (op ``pv.skew_v``, when the plan runs it): every core's V
    tile through the shift kernel's store-and-forward steps down the group's columns. The
    GEMM then takes V as its pre-skewed B, so the data are V's whatever the shift moved."""
    op = it.ops["pv.skew_v"]
    if not it._scalar(op.repeats):
        return v
    q = it.q
    tiles = _tiles(v, q, pg)
    r, c = tiles[0][0].shape
    matrix = np.zeros((pg * r * c, q), np.float32)  # core (x, y): its tile, flattened
    for y in range(q):
        for x in range(pg):
            matrix[x * r * c:(x + 1) * r * c, y] = tiles[y][x].reshape(-1)
    it.kernel("pv.skew_v", [matrix])
    return v


def _rotation(positions: np.ndarray, columns: np.ndarray, real: np.ndarray, d: int) -> Callable[[np.ndarray], np.ndarray]:
    """A core's RoPE task: rotate the interleaved pairs of its tile, whose rows are tokens at
    ``positions`` and whose columns are the head-dim indices ``columns`` (pairs start at even
    ones; ``real`` marks the columns that are not padding)."""
    cos, sin = ref.rope_angles(positions, d)

    def task(tile: np.ndarray) -> np.ndarray:
        out = tile.copy()
        for c in range(0, tile.shape[1], 2):
            if not real[c]:
                continue
            cs, sn = cos[:, columns[c] // 2], sin[:, columns[c] // 2]
            a, b = tile[:, c], tile[:, c + 1]
            out[:, c], out[:, c + 1] = a * cs - b * sn, a * sn + b * cs
        return out

    return task


def _softmax(it: _Interpreter, scores: np.ndarray, mask: np.ndarray, pg: int) -> np.ndarray:
    """Causal softmax of one attention instance's scores on the group's ``pg`` x ``q``
    mesh: local max, allreduce of the maxima, local exp and sums, allreduce, local divide."""
    q = it.q
    m, n = scores.shape
    width = ceil_div(n, pg).item() * pg
    s_t = _tiles(_padded(np.where(mask, scores, -np.inf), m, width), q, pg)
    m_t = _tiles(_padded(mask.astype(np.float32), m, width), q, pg)

    def local_max(t: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.where(k.any(axis=1), np.max(np.where(k > 0, t, -np.inf), axis=1), -np.inf)

    part = it.local("softmax.max", [[(s_t[y][x], m_t[y][x]) for x in range(pg)] for y in range(q)], local_max)
    part = np.array(part)
    finite = np.where(np.isfinite(part), part, np.float32(-3e38))
    top = it.kernel("softmax.allreduce_max", [finite], combine="max")
    exps = [[np.where(m_t[y][x] > 0, np.exp(np.where(m_t[y][x] > 0, s_t[y][x], 0) - top[y, x][:, None]), 0)
             for x in range(pg)] for y in range(q)]
    sums = it.local("softmax.exp_sum", [[(exps[y][x],) for x in range(pg)] for y in range(q)],
                    lambda t: t.sum(axis=1))
    total = it.kernel("softmax.allreduce_sum", [np.array(sums)])
    probs = it.local("softmax.divide", [[(exps[y][x], total[y, x]) for x in range(pg)] for y in range(q)],
                     lambda t, s: t / np.where(s > 0, s, 1)[:, None])
    return np.block(probs)[:, :n]


# ----------------------------------------------------------------------- decode
def _decode_layer(it: _Interpreter, w: ref.LayerWeights, x: np.ndarray, cache: list[tuple[np.ndarray, np.ndarray]],
                  position: int, row_of: Callable[[int], int]) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """One decode layer for ``x`` (batch x E, one new token per request at ``position``) with
    each request's cache (K, V: tokens x H_kv d, true columns); ``row_of(t)``: the row of
    cores holding cached token ``t``."""
    model, p, q = it.model, it.p, it.q
    e, h, hkv, d, ffn = model.hidden, model.heads, model.kv_heads, model.head_dim, model.ffn
    gr = it.groups
    g_count, pg, eta, kappa = it.head_groups, gr["pg"], gr["eta"], gr["kappa"]
    batch = x.shape[0]
    eq, fx = ceil_div(e, q).item(), ceil_div(ffn, p).item()
    hw = ceil_div(d, pg).item()
    share = h // hkv
    scale = 1.0 / np.sqrt(d)

    def rows_of(vector: np.ndarray, size: int) -> list[np.ndarray]:
        """A (rows x n) tensor's slices along y: row y holds columns [y size, (y + 1) size)."""
        full = _padded(vector, vector.shape[0], size * q)
        return [full[:, y * size:(y + 1) * size] for y in range(q)]

    def replicated(slices: list[np.ndarray], along: str) -> list[list[tuple[np.ndarray, ...]]]:
        if along == "y":  # slice by row, the same in every column
            return [[(slices[y],) for _ in range(p)] for y in range(q)]
        return [[(slices[x],) for x in range(p)] for _ in range(q)]

    def norm(prefix: str, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        xs = rows_of(x, eq)
        part = it.local(f"{prefix}.sumsq", replicated(xs, "y"), lambda t: (t * t).sum(axis=1))
        sums = it.kernel(f"{prefix}.allreduce", [np.array(part)])
        ws = rows_of(weight[None, :], eq)
        out = it.local(f"{prefix}.scale", [[(xs[y], sums[y, j], ws[y]) for j in range(p)] for y in range(q)],
                       lambda t, s, wv: t / np.sqrt(s / e + ref.EPS)[:, None] * wv)
        return np.concatenate([out[y][0] for y in range(q)], axis=1)[:, :e]

    # per core column x: its group and its slice of each head, [q heads | k heads | v heads]
    def head_columns(x_col: int) -> tuple[list[int], list[int], list[int]]:
        g, c = x_col // pg, x_col % pg
        if g >= g_count:
            return [], [], []
        cols = [c * hw + i for i in range(hw) if c * hw + i < d]
        q_heads = list(range(g * eta, (g + 1) * eta))
        kv_heads = sorted({hh // share for hh in q_heads})
        return cols, q_heads, kv_heads

    xn = norm("norm1", x, w.norm1)
    wq, bq = w.wq * scale, w.bq * scale
    slots = eta + 2 * kappa  # a core's head slices: its group's query heads, then K, then V

    def slot_columns(xc: int) -> list[list[int]]:
        """Model columns of each of core ``xc``'s slots (Q, K, V concatenated: E x (H + 2 H_kv) d)."""
        cols, q_heads, kv_heads = head_columns(xc)
        offset_k, offset_v = h * d, h * d + hkv * d
        return ([[hh * d + c for c in cols] for hh in q_heads]
                + [[offset_k + j * d + c for c in cols] for j in kv_heads]
                + [[offset_v + j * d + c for c in cols] for j in kv_heads]) if cols else []

    w_all = np.concatenate([wq, w.wk, w.wv], axis=1)
    b_all = np.concatenate([bq, w.bk, w.bv])

    def slotted(matrix: np.ndarray, xc: int) -> np.ndarray:
        """The columns of core ``xc``'s slots of ``matrix``, each slot padded to ``hw``."""
        out = np.zeros(matrix.shape[:-1] + (slots * hw,), np.float32)
        for i, columns in enumerate(slot_columns(xc)):
            out[..., i * hw:i * hw + len(columns)] = matrix[..., columns]
        return out

    xs = rows_of(xn, eq)
    w_pad = _padded(w_all, eq * q, w_all.shape[1])
    tiles = [[(xs[y], slotted(w_pad[y * eq:(y + 1) * eq], xc)) for xc in range(p)] for y in range(q)]
    part = it.local("qkv.local", tiles, lambda a, b: a @ b)
    vec = it.kernel("qkv.allreduce", [np.array(part).reshape(q, p, -1)]).reshape(q, p, batch, slots * hw)
    if it._scalar(it.ops["qkv.bias"].repeats):
        out = it.local("qkv.bias", [[(vec[y, xc], slotted(b_all[None, :], xc)[0]) for xc in range(p)]
                                    for y in range(q)], np.add)
        vec = np.array(out)
    # RoPE on each core's query and key slots, pairs of head-dim indices (2i, 2i + 1)
    rot = [[None] * p for _ in range(q)]
    for xc in range(p):
        cols = head_columns(xc)[0]
        dims = np.zeros((eta + kappa) * hw, dtype=np.int64)
        real = np.zeros((eta + kappa) * hw, dtype=bool)
        for i in range(eta + kappa):
            dims[i * hw:i * hw + len(cols)] = cols
            real[i * hw:i * hw + len(cols)] = True
        task = _rotation(np.full(batch, position), dims, real, d)
        for y in range(q):
            rot[y][xc] = task
    roped = np.array(it.local("rope", [[(vec[y, xc][:, :(eta + kappa) * hw],) for xc in range(p)]
                                       for y in range(q)], rot))
    vec = np.concatenate([roped, vec[..., (eta + kappa) * hw:]], axis=-1)
    stored = np.array(it.local("kv.store", [[(vec[y, xc][:, eta * hw:],) for xc in range(p)] for y in range(q)],
                               lambda t: t.copy()))
    new_q = np.zeros((batch, h * d), np.float32)
    new_kv = np.zeros((batch, 2 * hkv * d), np.float32)
    for xc in range(p):
        for i, columns in enumerate(slot_columns(xc)):
            if i < eta:
                new_q[:, columns] = vec[0, xc, :, i * hw:i * hw + len(columns)]
            else:
                k_or_v = stored[0, xc, :, (i - eta) * hw:(i - eta) * hw + len(columns)]
                new_kv[:, [c - h * d for c in columns]] = k_or_v
    new_k, new_v = new_kv[:, :hkv * d], new_kv[:, hkv * d:]
    cache = [(np.concatenate([k, new_k[b:b + 1]]), np.concatenate([v, new_v[b:b + 1]]))
             for b, (k, v) in enumerate(cache)]
    if it._scalar(it.ops["kv.shift"].repeats):
        op = it.ops["kv.shift"]
        moved = np.zeros((it._scalar(op.params["m"]), it._scalar(op.params["n"])), np.float32)
        # the payload, one token's K and V slices per core, changes where entries sit, not
        # what the cache holds (which the interpreter keeps whole)
        moved[:batch * 2 * kappa * hw] = 1.0
        it.kernel("kv.shift", [moved])
    tokens = cache[0][0].shape[0]
    c_max = max(sum(1 for t in range(tokens) if row_of(t) == y) for y in range(q))
    # scores: each core dots its slice of every query head with its row's cached keys
    part = np.zeros((q, p, batch * eta * c_max), np.float32)
    tiles_s = []
    for y in range(q):
        mine = [t for t in range(tokens) if row_of(t) == y]
        row = []
        for xc in range(p):
            cols, q_heads, _ = head_columns(xc)
            values = np.zeros((batch, eta, c_max), np.float32)
            for b in range(batch):
                for i, hh in enumerate(q_heads):
                    j = hh // share
                    kc = cache[b][0][mine][:, [j * d + c for c in cols]]
                    values[b, i, :len(mine)] = kc @ new_q[b, [hh * d + c for c in cols]]
            row.append((values.reshape(-1),))
        tiles_s.append(row)
    part = np.array(it.local("scores.local", tiles_s, lambda t: t))
    scores = np.zeros_like(part)
    for g in range(g_count):
        it.group = g
        scores[:, g * pg:(g + 1) * pg] = it.kernel("scores.allreduce", [part[:, g * pg:(g + 1) * pg]])
    it.group = 0
    scores = scores.reshape(q, p, batch, eta, c_max)
    counts = [sum(1 for t in range(tokens) if row_of(t) == y) for y in range(q)]
    valid = np.array([[np.arange(c_max) < counts[y]] for y in range(q)])[:, :, None, None, :]
    masked = np.where(valid, scores, -np.inf)
    local_max = it.local("softmax.max", [[(masked[y, xc],) for xc in range(p)] for y in range(q)],
                         lambda t: np.where(np.isfinite(t).any(axis=-1), t.max(axis=-1), -3e38).reshape(-1))
    top = it.kernel("softmax.allreduce_max", [np.array(local_max)], combine="max").reshape(q, p, batch, eta)
    exps = np.where(valid, np.exp(np.where(valid, scores, 0) - top[..., None]), 0).astype(np.float32)
    sums = it.local("softmax.exp_sum", [[(exps[y, xc],) for xc in range(p)] for y in range(q)],
                    lambda t: t.sum(axis=-1).reshape(-1))
    total = it.kernel("softmax.allreduce_sum", [np.array(sums)]).reshape(q, p, batch, eta)
    probs = np.array(it.local("softmax.divide", [[(exps[y, xc], total[y, xc]) for xc in range(p)] for y in range(q)],
                              lambda t, s: t / s[..., None]))
    # P.V: each core sums its row's tokens into its slice of every head of its group
    tiles_v = []
    for y in range(q):
        mine = [t for t in range(tokens) if row_of(t) == y]
        row = []
        for xc in range(p):
            cols, q_heads, _ = head_columns(xc)
            values = np.zeros((batch, eta, hw), np.float32)
            for b in range(batch):
                for i, hh in enumerate(q_heads):
                    j = hh // share
                    vc = cache[b][1][mine][:, [j * d + c for c in cols]]
                    values[b, i, :len(cols)] = probs[y, xc, b, i, :len(mine)] @ vc
            row.append((values.reshape(-1),))
        tiles_v.append(row)
    part = np.array(it.local("pv.local", tiles_v, lambda t: t))
    o_vec = it.kernel("pv.allreduce", [part]).reshape(q, p, batch, eta, hw)
    attn_in = np.zeros((batch, h * d), np.float32)
    for xc in range(p):
        cols, q_heads, _ = head_columns(xc)
        for i, hh in enumerate(q_heads):
            attn_in[:, [hh * d + c for c in cols]] = o_vec[0, xc, :, i, :len(cols)]
    # O (stored transposed): input over x, output over y, allreduce along x
    tiles_o = []
    for y in range(q):
        row = []
        for xc in range(p):
            cols, q_heads, _ = head_columns(xc)
            idx = [hh * d + c for hh in q_heads for c in cols]
            wt = _padded(w.wo[idx][:, y * eq:min((y + 1) * eq, e)], eta * hw, eq)
            row.append((_padded(attn_in[:, idx], batch, eta * hw), wt))
        tiles_o.append(row)
    part = it.local("o.local", tiles_o, lambda a, b: a @ b)
    o_out = it.kernel("o.allreduce", [np.array(part).reshape(q, p, -1)]).reshape(q, p, batch, eq)
    attn = np.concatenate([o_out[y, 0] for y in range(q)], axis=1)[:, :e]
    xs = rows_of(x, eq)
    xs2 = rows_of(attn, eq)
    added = it.local("residual1", [[(xs[y], xs2[y]) for _ in range(p)] for y in range(q)], np.add)
    x = np.concatenate([added[y][0] for y in range(q)], axis=1)[:, :e]
    xn = norm("norm2", x, w.norm2)
    xs = rows_of(xn, eq)
    wu = _padded(w.w_up, eq * q, fx * p)
    wg = _padded(w.w_gate, eq * q, fx * p)
    tiles_u = [[(xs[y], np.concatenate([wu[y * eq:(y + 1) * eq, xc * fx:(xc + 1) * fx],
                                        wg[y * eq:(y + 1) * eq, xc * fx:(xc + 1) * fx]], axis=1))
                for xc in range(p)] for y in range(q)]
    part = it.local("up_gate.local", tiles_u, lambda a, b: a @ b)
    ug = it.kernel("up_gate.allreduce", [np.array(part).reshape(q, p, -1)]).reshape(q, p, batch, 2 * fx)
    act = it.local("silu_mul", [[(ug[y, xc],) for xc in range(p)] for y in range(q)],
                   lambda t: ref.silu(t[:, fx:]) * t[:, :fx])
    wd = _padded(w.w_down, fx * p, eq * q)
    tiles_d = [[(act[y][xc], wd[xc * fx:(xc + 1) * fx, y * eq:(y + 1) * eq]) for xc in range(p)] for y in range(q)]
    part = it.local("down.local", tiles_d, lambda a, b: a @ b)
    down = it.kernel("down.allreduce", [np.array(part).reshape(q, p, -1)]).reshape(q, p, batch, eq)
    down = np.concatenate([down[y, 0] for y in range(q)], axis=1)[:, :e]
    xs, xs2 = rows_of(x, eq), rows_of(down, eq)
    added = it.local("residual2", [[(xs[y], xs2[y]) for _ in range(p)] for y in range(q)], np.add)
    x = np.concatenate([added[y][0] for y in range(q)], axis=1)[:, :e]
    it.layer_done()
    return x, cache


# -------------------------------------------------------------------- transfers
def _transfer(spec: HardwareSpec, phase: str, after: int, tiles: list[list[np.ndarray]],
              origins: tuple[tuple[int, int], tuple[int, int]], result: LayoutRun) -> list[list[np.ndarray]]:
    """Move every core's tile (``tiles[y][x]``, one shape) from one region to the next, as the
    closed form does (:mod:`plummer.layout._metrics`): a shift along each axis the regions are
    apart, each run on a mesh spanning both regions; returns the tiles as the next region
    holds them, and records executed against predicted cycles."""
    shift = get_kernel("shift", "shift")
    rows, cols = len(tiles), len(tiles[0])
    r, c = tiles[0][0].shape
    (x0, y0), (x1, y1) = origins
    for axis, hops in (("x", abs(x1 - x0)), ("y", abs(y1 - y0))):
        if not hops:
            continue
        width, height = (cols + hops, rows) if axis == "x" else (cols, rows + hops)
        matrix = np.zeros((width * r, height * c), np.float32)  # tile (x, y) at [x r, y c]
        for y in range(rows):
            for x in range(cols):
                matrix[x * r:(x + 1) * r, y * c:(y + 1) * c] = tiles[y][x]
        params = {"p": width, "q": height, "m": width * r, "n": height * c, "distance": hops, "axis": axis}
        run = shift.execute(spec, operands=(matrix,), **params)
        if not run.correct:
            raise RuntimeError("transfer: the executor's shift differs from numpy")
        dx, dy = (hops, 0) if axis == "x" else (0, hops)
        tiles = [[run.output[(x + dx) * r:(x + dx + 1) * r, (y + dy) * c:(y + dy + 1) * c]
                  for x in range(cols)] for y in range(rows)]
        predicted = float(shift.cost(spec, **params).cycles)
        result.transfers.append({"phase": phase, "after_layer": after, "axis": axis, "hops": hops,
                                 "executed": run.execution.cycles, "predicted": predicted,
                                 "rel_error": abs(predicted - run.execution.cycles) / run.execution.cycles})
    return tiles


def _boundaries(spec: HardwareSpec, model: ModelSpec, lay: Any) -> dict[int, tuple[tuple[int, int], tuple[int, int]]]:
    """The layers after which the activations move to another region, with both origins."""
    origins = region_origins(spec, lay)
    ends = np.cumsum(region_layer_counts(model, lay))
    return {int(end) - 1: (origins[i], origins[i + 1]) for i, end in enumerate(ends[:-1])}


def _phase_total(result: LayoutRun, phase: str, predicted: float) -> None:
    """Record a phase's executed total (its layers and transfers) against the closed form."""
    executed = (sum(row["executed"] for row in result.layers if row["phase"] == phase)
                + sum(row["executed"] for row in result.transfers if row["phase"] == phase))
    result.phases.append({"phase": phase, "executed": executed, "predicted": predicted,
                          "rel_error": abs(predicted - executed) / executed})


# ------------------------------------------------------------------- the whole
def execute_layout(spec: HardwareSpec, model: ModelSpec, layout: Layout, seed: int = 0) -> LayoutRun:
    """Prefill ``layout.batch`` random prompts of ``layout.input_tokens`` tokens and decode one
    token each on the executor, through the layout's plans; compare with the reference
    transformer and every op with its closed form. Grids up to :data:`MAX_SIDE`."""
    for phase in ("prefill", "decode"):
        p, q = getattr(layout, phase).grid
        if max(p, q) > MAX_SIDE:
            raise SpecError(f"layout [{phase}]: grid {p}x{q}: the executor runs grids up to "
                            f"{MAX_SIDE}x{MAX_SIDE} (use `plummer predict` for larger)")
    arrays = layout_arrays(spec, model, [layout])
    batch, length = layout.batch, layout.input_tokens
    weights = ref.random_weights(model, seed)
    rng = np.random.default_rng(seed + 1)
    prompts = rng.standard_normal((batch, length, model.hidden)).astype(np.float32)
    new = rng.standard_normal((batch, model.hidden)).astype(np.float32)
    expected, caches_ref = [], []
    for b in range(batch):
        out, kv = ref.forward(model, weights, prompts[b])
        expected.append(out)
        caches_ref.append(kv)
    expected_decode = np.stack([ref.forward(model, weights, new[b:b + 1], start=length, caches=caches_ref[b])[0][0]
                                for b in range(batch)])

    result = LayoutRun()
    pf = arrays.prefill
    ops = prefill_plan(model, spec, pf, arrays.batch, arrays.input_tokens)
    it = _Interpreter(spec, model, "prefill", pf, ops, evaluate_ops(spec, ops), result)
    q = it.q
    lp = ceil_div(length, q).item() * q
    x = np.zeros((batch * lp, model.hidden), np.float32)
    for b in range(batch):
        x[b * lp:b * lp + length] = prompts[b]
    caches: list[list[tuple[np.ndarray, np.ndarray]]] = []
    moves = _boundaries(spec, model, layout.prefill)
    cols = ceil_div(model.hidden, it.p).item()
    for i, w in enumerate(weights):
        x, kv = _prefill_layer(it, w, x, length, batch)
        caches.append(kv)
        if i in moves:  # the residual stream moves to the next region
            moved = _transfer(spec, "prefill", i, _tiles(_padded(x, x.shape[0], cols * it.p), q, it.p),
                              moves[i], result)
            x = np.block(moved)[:, :model.hidden]
    got = np.stack([x[b * lp:b * lp + length] for b in range(batch)])
    result.prefill_error = float(np.max(np.abs(got - np.stack(expected))))

    dc = arrays.decode
    context = np.asarray(length + 1)
    q_dc = int(dc.q.reshape(-1)[0])
    shift = layout.kv_cache == "shift"
    prompt_rows = ceil_div(length, q_dc).item()

    def row_of(t: int) -> int:
        if shift:
            return t // ceil_div(length + 1, q_dc).item()
        return t // prompt_rows if t < length else q_dc - 1

    c_max = max(sum(1 for t in range(length + 1) if row_of(t) == y) for y in range(q_dc))
    ops = decode_plan(model, spec, dc, arrays.batch, context, np.asarray(c_max), np.asarray(shift))
    it = _Interpreter(spec, model, "decode", dc, ops, evaluate_ops(spec, ops), result)
    x = new.copy()
    moves = _boundaries(spec, model, layout.decode)
    eq = ceil_div(model.hidden, q_dc).item()
    for i, w in enumerate(weights):
        per_layer = [(caches[i][b][0], caches[i][b][1]) for b in range(batch)]
        x, _ = _decode_layer(it, w, x, per_layer, length, row_of)
        if i in moves:  # the vector (E over y, the same in every column) moves on
            slices = _padded(x, batch, eq * q_dc)
            tiles = [[slices[:, y * eq:(y + 1) * eq] for _ in range(it.p)] for y in range(q_dc)]
            moved = _transfer(spec, "decode", i, tiles, moves[i], result)
            x = np.concatenate([moved[y][0] for y in range(q_dc)], axis=1)[:, :model.hidden]
    result.decode_error = float(np.max(np.abs(x - expected_decode)))
    m = evaluate(spec, model, arrays).metrics
    _phase_total(result, "prefill", float(m["ttft_cycles"][0]))
    _phase_total(result, "decode", float(m["decode_cycles_per_token"][0]))
    return result


#: The tiny model ``plummer validate layout`` runs (hidden 64, 4 heads, 2 KV heads, FFN 128,
#: 2 layers): small enough for the pure-Python executor, with every feature of the plans
#: (GQA, head groups, both phases, two regions).
TINY = ModelSpec(name="tiny", hidden=64, ffn=128, layers=2, heads=4, kv_heads=2, head_dim=16,
                 vocab=256, dtype="fp32", source="plummer's test model (not a published one)")


def validation_layouts() -> list[tuple[str, Layout]]:
    """The layouts ``plummer validate layout`` executes: each GEMM and allreduce algorithm,
    both KV schemes, a batch of two, GQA with copied KV heads, two regions per phase."""
    base = {"input_tokens": 16, "output_tokens": 1,
            "prefill": {"grid": [8, 8], "regions": 2}, "decode": {"grid": [4, 4], "regions": 2}}

    def variant(**changes: Any) -> Layout:
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
        for key, value in changes.items():
            if isinstance(value, dict):
                data[key] |= value
            else:
                data[key] = value
        return Layout.from_dict(data)

    return [
        ("meshgemm, K-tree, shift KV", variant()),
        ("cannon, pipeline allreduce, concat KV", variant(prefill={"gemm": "cannon", "allreduce": "pipeline"},
                                                          decode={"allreduce": "pipeline"}, kv_cache="concat")),
        ("summa-relay, ring allreduce", variant(prefill={"gemm": "summa-relay", "allreduce": "ring"},
                                                decode={"allreduce": "ring"})),
        ("batch 2, K = 1 K-tree", variant(batch=2, prefill={"k_tree": 1}, decode={"k_tree": 1})),
        ("4 head groups (KV copied), 12 x 6 decode", variant(
            prefill={"grid": [8, 8], "head_groups": 4}, decode={"grid": [12, 6], "head_groups": 4})),
        ("16 x 16 prefill, one region", variant(prefill={"grid": [16, 16], "regions": 1}, input_tokens=32)),
    ]


def validate_layouts(spec: HardwareSpec, seed: int = 0) -> list[dict[str, Any]]:
    """Run :func:`validation_layouts` on the executor: per layout, the outputs' largest error
    against the reference transformer and the largest relative error of an op, a layer and a
    phase (prefill TTFT, one decode step) against the closed form."""
    rows = []
    for name, layout in validation_layouts():
        run = execute_layout(spec, TINY, layout, seed=seed)
        rows.append({"layout": name, "prefill_error": run.prefill_error, "decode_error": run.decode_error,
                     "op_runs": len(run.runs), "max_op_error": run.max_op_error,
                     "max_layer_error": run.max_layer_error, "max_phase_error": run.max_phase_error,
                     "prefill_cycles": next(p["executed"] for p in run.phases if p["phase"] == "prefill"),
                     "decode_cycles": next(p["executed"] for p in run.phases if p["phase"] == "decode")})
    return rows
