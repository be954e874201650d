"""Compiled cascade stage (numba): islands, the islands' rebalancing and the DC power flow in one call.

A cascade stage in numpy and scipy costs about 1.5 ms on case118, nearly all of it the call overhead of building
sparse matrices and of scipy's graph and LU front ends, not arithmetic; the placement study runs hundreds of
thousands of stages. These kernels do the same work in one pass:

- islands by a breadth-first search over the in-service branches (an island's label is the order of its
  smallest bus, as scipy's ``connected_components`` numbers them);
- the rebalancing rules of :func:`physical.cascade._balance`, in the same arithmetic and summation order, so
  the shed and the generation are the same to the bit;
- the DC power flow by a symmetric LDL^T factorisation of the bus susceptance matrix kept in reverse
  Cuthill-McKee order: a branch outage only removes entries, so the intact grid's envelope (profile) holds every
  factor's non-zeros and the factorisation touches only that envelope. Each island's reference bus is grounded
  (its row and column replaced by the identity). LDL^T needs no pivoting for the grids' positive definite
  matrices and tolerates a negative series reactance (case300 has one).

``tests/physical/test_cascade_kernels.py`` checks them against :meth:`DCGrid.islands`, ``_balance`` and
:meth:`DCGrid.flows_mw` (itself tested against pandapower's ``rundcpp``), with outages and islands.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import reverse_cuthill_mckee

from physical.cache_folders import ensure_kernel_cache
from physical.dc_power_flow import DCGrid

ensure_kernel_cache(__file__)  # before the kernels: numba picks their cache folder as they are defined

FLOAT_MAX = np.finfo(np.float64).max


class KernelGrid(NamedTuple):
    """A :class:`DCGrid` as the flat arrays the kernels read (built once per grid by :func:`kernel_grid`)."""

    from_bus: np.ndarray
    to_bus: np.ndarray
    susceptance_mw: np.ndarray
    shift_rad: np.ndarray
    gen_bus: np.ndarray
    gen_pmax_mw: np.ndarray
    gen_by_size: np.ndarray  # generators by descending capacity (stable): an island's reference is its first
    adj_start: np.ndarray  # bus b's branches are adj_branch[adj_start[b]:adj_start[b + 1]]
    adj_branch: np.ndarray
    position: np.ndarray  # bus -> row of the reordered (reverse Cuthill-McKee) susceptance matrix
    envelope: np.ndarray  # row -> first column of its envelope in that order


def kernel_grid(grid: DCGrid) -> KernelGrid:
    f, t = grid.from_bus, grid.to_bus
    buses = np.concatenate([f, t])
    branches = np.concatenate([np.arange(grid.n_branch)] * 2)
    order = np.argsort(buses, kind="stable")
    adj_start = np.searchsorted(buses[order], np.arange(grid.n_bus + 1))
    graph = coo_matrix((np.ones(2 * grid.n_branch), (buses, np.concatenate([t, f]))),
                       shape=(grid.n_bus, grid.n_bus)).tocsr()
    rcm = reverse_cuthill_mckee(graph, symmetric_mode=True)
    position = np.empty(grid.n_bus, np.int64)
    position[rcm] = np.arange(grid.n_bus)
    envelope = np.arange(grid.n_bus)
    np.minimum.at(envelope, position[f], np.minimum(position[f], position[t]))
    np.minimum.at(envelope, position[t], np.minimum(position[f], position[t]))
    return KernelGrid(f.astype(np.int64), t.astype(np.int64), grid.susceptance_mw.astype(float),
                      grid.shift_rad.astype(float), grid.gen_bus.astype(np.int64), grid.gen_pmax_mw.astype(float),
                      np.argsort(-grid.gen_pmax_mw, kind="stable").astype(np.int64), adj_start.astype(np.int64),
                      branches[order].astype(np.int64), position, envelope.astype(np.int64))


@njit(cache=True)
def island_labels(kg: KernelGrid, in_service: np.ndarray) -> np.ndarray:
    """Island label of every bus over the in-service branches (0, 1, ... in the order of their smallest bus)."""
    n = kg.position.size
    labels = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int64)
    count = 0
    for start in range(n):
        if labels[start] >= 0:
            continue
        labels[start] = count
        queue[0] = start
        head, tail = 0, 1
        while head < tail:
            bus = queue[head]
            head += 1
            for k in range(kg.adj_start[bus], kg.adj_start[bus + 1]):
                branch = kg.adj_branch[k]
                if not in_service[branch]:
                    continue
                other = kg.to_bus[branch] if kg.from_bus[branch] == bus else kg.from_bus[branch]
                if labels[other] < 0:
                    labels[other] = count
                    queue[tail] = other
                    tail += 1
        count += 1
    return labels


@njit(cache=True)
def reference_buses(kg: KernelGrid, labels: np.ndarray) -> np.ndarray:
    """One bus per island: the bus of its largest generator, else its smallest bus."""
    n_islands = labels.max() + 1
    ref = np.full(n_islands, -1, np.int64)
    for g in kg.gen_by_size:
        island = labels[kg.gen_bus[g]]
        if ref[island] < 0:
            ref[island] = kg.gen_bus[g]
    for bus in range(labels.size):
        if ref[labels[bus]] < 0:
            ref[labels[bus]] = bus
    return ref


@njit(cache=True, inline="always")
def _finite(x: float) -> float:
    """numpy's ``nan_to_num`` of one value."""
    if np.isnan(x):
        return 0.0
    if np.isinf(x):
        return FLOAT_MAX if x > 0 else -FLOAT_MAX
    return x


@njit(cache=True, inline="always")
def _clip01(x: float) -> float:
    """numpy's ``clip(x, 0, 1)`` (a NaN stays NaN)."""
    if x < 0.0:
        return 0.0
    if x > 1.0:
        return 1.0
    return x


@njit(cache=True, error_model="numpy")
def balance(kg: KernelGrid, labels: np.ndarray, served: np.ndarray, gen_ref: np.ndarray) -> np.ndarray:
    """:func:`physical.cascade._balance` (the island rules of that module's docstring), same arithmetic and order:
    sheds in ``served`` in place and returns the generation."""
    n = labels.max() + 1
    n_gen = kg.gen_bus.size
    gen_island = np.empty(n_gen, np.int64)
    capacity = np.zeros(n)
    ref_total = np.zeros(n)
    for g in range(n_gen):
        gen_island[g] = labels[kg.gen_bus[g]]
        capacity[gen_island[g]] += kg.gen_pmax_mw[g]
        ref_total[gen_island[g]] += gen_ref[g]
    demand = np.zeros(n)
    load = np.zeros(n)
    for b in range(served.size):
        demand[labels[b]] += served[b]
        load[labels[b]] += max(served[b], 0.0)
    keep = np.ones(n)
    target = np.empty(n)
    for i in range(n):
        if demand[i] > capacity[i] + 1e-9 and load[i] > 0:
            keep[i] = _clip01(1.0 - (demand[i] - capacity[i]) / load[i])
        target[i] = max(min(demand[i], capacity[i]), 0.0)
    for b in range(served.size):
        if served[b] > 0:
            served[b] = served[b] * keep[labels[b]]
    ref = np.empty(n_gen)
    ref_sum = np.zeros(n)
    for g in range(n_gen):
        ref[g] = gen_ref[g] if ref_total[gen_island[g]] > 0 else kg.gen_pmax_mw[g]
        ref_sum[gen_island[g]] += ref[g]
    gen = np.empty(n_gen)
    given = np.zeros(n)
    for g in range(n_gen):
        i = gen_island[g]
        gen[g] = min(_finite(ref[g] * target[i] / ref_sum[i]), kg.gen_pmax_mw[g])
        given[i] += gen[g]
    room = np.zeros(n)
    for g in range(n_gen):
        room[gen_island[g]] += kg.gen_pmax_mw[g] - gen[g]
    for g in range(n_gen):
        i = gen_island[g]
        headroom = kg.gen_pmax_mw[g] - gen[g]
        gen[g] = gen[g] + _finite(headroom * _clip01((target[i] - given[i]) / room[i]))
    return gen


@njit(cache=True)
def flows_mw(kg: KernelGrid, in_service: np.ndarray, injection_mw: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """:meth:`DCGrid.flows_mw` by envelope LDL^T (injections balanced in every island; one reference each)."""
    n = kg.position.size
    pos = kg.position
    matrix = np.zeros((n, n))
    rhs = np.zeros(n)
    for b in range(n):
        rhs[pos[b]] = injection_mw[b]
    grounded = np.zeros(n, np.bool_)
    for r in reference:
        grounded[pos[r]] = True
    for k in range(kg.from_bus.size):
        if not in_service[k]:
            continue
        i, j, y = pos[kg.from_bus[k]], pos[kg.to_bus[k]], kg.susceptance_mw[k]
        rhs[i] += y * kg.shift_rad[k]
        rhs[j] -= y * kg.shift_rad[k]
        matrix[i, i] += y
        matrix[j, j] += y
        if i > j:
            matrix[i, j] -= y
        else:
            matrix[j, i] -= y
    for i in range(n):  # a reference bus: angle 0, its row and column out of the system
        if grounded[i]:
            rhs[i] = 0.0
            matrix[i, i] = 1.0
            for j in range(kg.envelope[i], i):
                matrix[i, j] = 0.0
            for j in range(i + 1, n):
                matrix[j, i] = 0.0
    # L D L^T in place of the lower triangle (unit L below the diagonal, D on it), envelope only
    first = kg.envelope
    for i in range(n):
        for j in range(first[i], i):
            s = matrix[i, j]
            for k in range(max(first[i], first[j]), j):
                s -= matrix[i, k] * matrix[k, k] * matrix[j, k]
            matrix[i, j] = s / matrix[j, j]
        d = matrix[i, i]
        for k in range(first[i], i):
            d -= matrix[i, k] * matrix[i, k] * matrix[k, k]
        matrix[i, i] = d
    for i in range(n):
        s = rhs[i]
        for k in range(first[i], i):
            s -= matrix[i, k] * rhs[k]
        rhs[i] = s
    for i in range(n):
        rhs[i] /= matrix[i, i]
    for i in range(n - 1, -1, -1):
        x = rhs[i]
        for k in range(first[i], i):
            rhs[k] -= matrix[i, k] * x
    flows = np.zeros(kg.from_bus.size)
    for k in range(kg.from_bus.size):
        if in_service[k]:
            y = kg.susceptance_mw[k]
            flows[k] = y * (rhs[pos[kg.from_bus[k]]] - rhs[pos[kg.to_bus[k]]] - kg.shift_rad[k])
    return flows


@njit(cache=True)
def stage_flows(kg: KernelGrid, in_service: np.ndarray, served: np.ndarray, gen_ref: np.ndarray) -> np.ndarray:
    """One cascade stage before its trips: islands, their rebalancing (sheds in ``served`` in place) and the
    absolute branch flows (MW)."""
    labels = island_labels(kg, in_service)
    gen = balance(kg, labels, served, gen_ref)
    injection = -served
    for g in range(gen.size):
        injection[kg.gen_bus[g]] += gen[g]
    return np.abs(flows_mw(kg, in_service, injection, reference_buses(kg, labels)))
