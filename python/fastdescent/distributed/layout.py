"""Where each element of the params travels: the params of one dtype laid end to end as one
flat vector, cut into buckets (one message each), each bucket split evenly between ranks.

Every rank computes the same layout from the params' shapes and dtypes alone, so no layout
is ever sent.

Cuts inside a param fall on multiples of :data:`CUT_ALIGN` elements from its start. The
kernels process a tensor in vector-wide blocks from its first element and the last few
elements one by one, and the two ways may round differently (fused multiply-add); a piece
cut on such a multiple has its elements in the same kind of block as in the whole tensor, so
a sharded step gives the same bits as an unsharded one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np


#: cuts inside a param are on multiples of this many elements from its start (a multiple
#: of every vector width times unrolling: 16 floats of AVX-512, four times over)
CUT_ALIGN = 64


@dataclass(frozen=True)
class Piece:
    """Elements ``start:stop`` of the flattened ``params[param]``, found at ``offset`` in the
    flat vector (or in whatever buffer the piece was cut for)."""
    param: int
    start: int
    stop: int
    offset: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class Flat:
    """The params of one dtype (``members``, in param order) laid end to end."""
    dtype: np.dtype
    members: list[int]
    offsets: list[int]          # offsets[k]: where params[members[k]] starts
    sizes: list[int]
    size: int
    buckets: list[tuple[int, int]] = field(default_factory=list)  # [lo, hi) ranges

    def snap(self, position: int) -> int:
        """The last allowed cut at or before ``position``: a param's start, or a multiple of
        CUT_ALIGN elements past it."""
        if position >= self.size:
            return self.size
        k = bisect.bisect_right(self.offsets, position) - 1
        return self.offsets[k] + (position - self.offsets[k]) // CUT_ALIGN * CUT_ALIGN

    def split(self, lo: int, hi: int, parts: int) -> tuple[list[int], list[int]]:
        """Counts and displacements (from ``lo``) of ``lo:hi`` split into ``parts`` runs,
        as even as the allowed cuts let them be (within CUT_ALIGN elements)."""
        cuts = [lo] + [max(lo, self.snap(lo + (hi - lo) * r // parts))
                       for r in range(1, parts)] + [hi]
        counts = [b - a for a, b in zip(cuts, cuts[1:])]
        return counts, [c - lo for c in cuts[:-1]]

    def pieces(self, lo: int, hi: int) -> list[Piece]:
        """The pieces of params that the range ``lo:hi`` of the flat vector covers, with
        offsets relative to ``lo``."""
        out = []
        k = max(0, bisect.bisect_right(self.offsets, lo) - 1)
        while k < len(self.members) and self.offsets[k] < hi:
            start = max(lo, self.offsets[k])
            stop = min(hi, self.offsets[k] + self.sizes[k])
            if stop > start:
                out.append(Piece(self.members[k], start - self.offsets[k],
                                 stop - self.offsets[k], start - lo))
            k += 1
        return out


def flats(params: list[np.ndarray], bucket_bytes: int, parts: int) -> list[Flat]:
    """One :class:`Flat` per dtype (in order of first appearance), cut into buckets of at
    most ``bucket_bytes`` (or CUT_ALIGN elements per part, when that is more)."""
    by_dtype: dict[np.dtype, Flat] = {}
    for i, param in enumerate(params):
        flat = by_dtype.setdefault(param.dtype, Flat(param.dtype, [], [], [], 0))
        flat.members.append(i)
        flat.offsets.append(flat.size)
        flat.sizes.append(param.size)
        flat.size += param.size
    for flat in by_dtype.values():
        step = max(CUT_ALIGN * parts, bucket_bytes // flat.dtype.itemsize)
        lo = 0
        while lo < flat.size:
            hi = flat.snap(lo + step)  # > lo: lo is an allowed cut and step >= CUT_ALIGN
            flat.buckets.append((lo, hi))
            lo = hi
    return list(by_dtype.values())


def signature(params: list[np.ndarray]) -> list[tuple[tuple[int, ...], str]]:
    """What the layout depends on: each param's shape and dtype."""
    return [(tuple(p.shape), p.dtype.str) for p in params]


def pack(flat_pieces: list[Piece], arrays: list, buffer: np.ndarray) -> None:
    """Copy the pieces of ``arrays`` (aligned with the params; None entries skipped) into
    ``buffer`` at the pieces' offsets."""
    for piece in flat_pieces:
        array = arrays[piece.param]
        if array is not None:
            buffer[piece.offset:piece.offset + piece.size] = \
                array.reshape(-1)[piece.start:piece.stop]


def unpack(flat_pieces: list[Piece], buffer: np.ndarray, arrays: list[np.ndarray]) -> None:
    """The inverse of :func:`pack`: copy ``buffer`` back into the pieces of ``arrays``."""
    for piece in flat_pieces:
        arrays[piece.param].reshape(-1)[piece.start:piece.stop] = \
            buffer[piece.offset:piece.offset + piece.size]
