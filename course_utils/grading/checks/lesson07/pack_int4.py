"""Checks of 07.pack_int4: Pack two 4-bit integers per byte, and unpack them."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _tensor, generator


q = question("07.pack_int4", "Pack two 4-bit integers per byte, and unpack them",
             answers=["pack_int4", "unpack_int4"], timeout=5)


def reference_pack(q: torch.Tensor) -> torch.Tensor:
    """int8 (..., n) in [-8, 7] -> uint8 (..., ceil(n / 2)): each value as its 4-bit
    two's complement, element 2i in the low nibble of byte i, element 2i + 1 in its
    high nibble; an odd row ends with a 0 in the high nibble of its last byte."""
    v = q.to(torch.int16) & 0xF  # (..., n), 0..15
    if v.shape[-1] % 2:
        v = F.pad(v, (0, 1))  # (..., n + 1): the high nibble of the last byte is 0
    return (v[..., 0::2] | (v[..., 1::2] << 4)).to(torch.uint8)


def reference_unpack(packed: torch.Tensor, n: int) -> torch.Tensor:
    """uint8 (..., ceil(n / 2)) -> int8 (..., n): the inverse of ``reference_pack``."""
    p = packed.to(torch.int16)
    v = torch.stack([p & 0xF, p >> 4], dim=-1).flatten(-2)[..., :n]  # (..., n), 0..15
    return torch.where(v >= 8, v - 16, v).to(torch.int8)


def mistaken_pack(q: torch.Tensor) -> dict[str, torch.Tensor]:
    """The bytes (int16 0..255) of typical packing mistakes."""
    v = q.to(torch.int16)
    if v.shape[-1] % 2:
        v = F.pad(v, (0, 1))
    lo, hi = v[..., 0::2], v[..., 1::2]
    return {"swapped": ((hi & 0xF) | ((lo & 0xF) << 4)),
            "unmasked": (lo | ((hi & 0xF) << 4)) & 0xFF}


def mistaken_unpack(packed: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """The values (int16) of typical unpacking mistakes."""
    p = packed.to(torch.int16)
    lo, hi = p & 0xF, p >> 4
    signed = lambda v: torch.where(v >= 8, v - 16, v)  # noqa: E731
    return {"unsigned": torch.stack([lo, hi], -1).flatten(-2)[..., :n],
            "swapped": signed(torch.stack([hi, lo], -1).flatten(-2)[..., :n])}


def int4_values(seed: int, shape) -> torch.Tensor:
    """Seeded int8 values in [-8, 7] of ``shape``."""
    return torch.randint(-8, 8, shape, generator=generator(seed), dtype=torch.int8)


def _bytes(t: torch.Tensor) -> torch.Tensor:
    """The bit patterns of a tensor of bytes as int16 0..255 (uint8 or int8 alike)."""
    return t.detach().to(torch.int16) & 0xFF


def _packed(fn, q) -> torch.Tensor:
    """pack_int4 on a copy of ``q``, checked to be a tensor (..., ceil(n / 2))."""
    n = q.shape[-1]
    got = call(fn, q.clone(), check_mutation=False, name="pack_int4")
    what = f"pack_int4(q {tuple(q.shape)})"
    shape = tuple(q.shape[:-1]) + (math.ceil(n / 2),)
    got = _tensor(got, what)
    if n % 2 and tuple(got.shape) == tuple(q.shape[:-1]) + (n // 2,):
        raise CheckFailure(f"{what} has shape {tuple(got.shape)}: the last value of "
                           f"each row of odd length {n} is lost; it needs a byte of "
                           "its own.")
    if got.dtype.is_floating_point or got.dtype == torch.bool:
        raise CheckFailure(f"{what} has dtype {got.dtype}; bytes are integers "
                           "(torch.uint8).", basic=True)
    return _tensor(got, what, shape)


def _unpacked(fn, packed, n) -> torch.Tensor:
    """unpack_int4 on a copy of ``packed``, checked to be a tensor of shape (..., n)."""
    got = call(fn, packed.clone(), n, check_mutation=False, name="unpack_int4")
    what = f"unpack_int4(packed {tuple(packed.shape)}, n={n})"
    got = _tensor(got, what)
    if n % 2 and tuple(got.shape) == tuple(packed.shape[:-1]) + (n + 1,):
        raise CheckFailure(f"{what} has shape {tuple(got.shape)}: the padding nibble "
                           f"of each row is returned too; a row has n = {n} values.")
    if got.dtype.is_floating_point or got.dtype == torch.bool:
        raise CheckFailure(f"{what} has dtype {got.dtype}; the values are integers "
                           "(torch.int8).", basic=True)
    return _tensor(got, what, tuple(packed.shape[:-1]) + (n,))


def _first_difference(got, ref, what, fmt=int, basic=False) -> None:
    bad = got.to(torch.int64) != ref.to(torch.int64)
    if bad.any():
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise CheckFailure(f"{what} differs at {int(bad.sum())} of {bad.numel()} "
                           f"positions; first at {idx}: {fmt(got[idx])}, expected "
                           f"{fmt(ref[idx])}.", basic=basic)


def _hex(v) -> str:
    return f"0x{int(v) & 0xFF:02X}"


def _expect_pack(fn, q) -> None:
    got = _packed(fn, q)
    _first_difference(_bytes(got), reference_pack(q), f"pack_int4(q {tuple(q.shape)})",
                      fmt=_hex)


def _expect_unpack(fn, packed, n) -> None:
    got = _unpacked(fn, packed, n)
    _first_difference(got, reference_unpack(packed, n),
                      f"unpack_int4(packed {tuple(packed.shape)}, n={n})")


_HINT = ("Each value takes its 4-bit two's complement pattern (its low 4 bits); "
         "element 2i goes into the low nibble of byte i and element 2i + 1 into its "
         "high nibble, row by row along the last axis; unpacking reads the nibbles "
         "back and turns the patterns 8..15 into the negative values they stand for.")


@q.case("pack: the 16 values -8..7 in order", kind="core", hint=_HINT)
def _(pack_int4, unpack_int4):
    _expect_pack(pack_int4, torch.arange(-8, 8, dtype=torch.int8))


@q.case("pack: a (5, 7) matrix, rows of odd length", kind="core", hint=_HINT)
def _(pack_int4, unpack_int4):
    _expect_pack(pack_int4, int4_values(0, (5, 7)))


@q.case("unpack: the bytes of a (3, 11) matrix", kind="core", hint=_HINT)
def _(pack_int4, unpack_int4):
    packed = reference_pack(int4_values(1, (3, 11)))
    _expect_unpack(unpack_int4, packed, 11)


@q.case("round trip: unpack(pack(q)) is q for a (96, 130) weight", kind="core",
        hint=_HINT)
def _(pack_int4, unpack_int4):
    q = int4_values(2, (96, 130))
    packed = _packed(pack_int4, q)
    got = _unpacked(unpack_int4, packed.detach().clone(), 130)
    _first_difference(got, q, "unpack_int4(pack_int4(q), 130) for q (96, 130)")


@q.case("element 2i sits in the low nibble, element 2i + 1 in the high one",
        hint="The layout is part of the format: a kernel that reads the packed weights "
             "expects element 2i in bits 0-3 and element 2i + 1 in bits 4-7. Swapping "
             "them round-trips with your own unpack, and with nothing else.")
def _(pack_int4, unpack_int4):
    q = int4_values(3, (4, 10))
    got = _bytes(_packed(pack_int4, q))
    ref = reference_pack(q)
    what = f"pack_int4(q {tuple(q.shape)})"
    if not torch.equal(got, ref):
        if torch.equal(got, mistaken_pack(q)["swapped"]):
            raise CheckFailure(f"{what} puts element 2i in the HIGH nibble and element "
                               "2i + 1 in the low one.")
        _first_difference(got, ref, what, fmt=_hex, basic=True)
    packed = reference_pack(q)
    values = _unpacked(unpack_int4, packed, 10)
    if torch.equal(values.to(torch.int64), q.to(torch.int64)):
        return
    if torch.equal(values.to(torch.int16), mistaken_unpack(packed, 10)["swapped"]):
        raise CheckFailure(f"unpack_int4(packed {tuple(packed.shape)}, n=10) reads the "
                           "high nibble as element 2i and the low one as element "
                           "2i + 1.")
    _first_difference(values, q, f"unpack_int4(packed {tuple(packed.shape)}, n=10)",
                      basic=True)


@q.case("negative values come back negative",
        hint="A nibble read from a byte is a number 0..15; the patterns 8..15 are the "
             "two's complement of -8..-1, so unpacking must turn them back into "
             "negative numbers (sign extension), or every negative weight becomes a "
             "large positive one.")
def _(pack_int4, unpack_int4):
    q = int4_values(4, (6, 8))
    packed = reference_pack(q)
    values = _unpacked(unpack_int4, packed, 8)
    what = f"unpack_int4(packed {tuple(packed.shape)}, n=8)"
    if torch.equal(values.to(torch.int64), q.to(torch.int64)):
        return
    if torch.equal(values.to(torch.int16), mistaken_unpack(packed, 8)["unsigned"]):
        raise CheckFailure(f"{what} returns values 0..15: the negative values come "
                           "back as their unsigned patterns (-1 as 15), not sign-"
                           "extended.")
    _first_difference(values, q, what, basic=True)


@q.case("the low nibble keeps to its 4 bits",
        hint="A negative int8 has all its high bits set (-1 is 0xFF): OR it into a "
             "byte as it is and it overwrites the high nibble. Keep only its low 4 "
             "bits before combining.")
def _(pack_int4, unpack_int4):
    q = int4_values(5, (3, 12))
    got = _bytes(_packed(pack_int4, q))
    ref = reference_pack(q)
    what = f"pack_int4(q {tuple(q.shape)})"
    if torch.equal(got, ref):
        return
    if torch.equal(got, mistaken_pack(q)["unmasked"]):
        raise CheckFailure(f"{what}: where element 2i is negative, its sign bits "
                           "spill into the high nibble (the low value is not masked "
                           "to 4 bits).")
    _first_difference(got, ref, what, fmt=_hex, basic=True)


@q.case("an odd length: the last value gets a byte, the padding is dropped again",
        hint="A row of odd length n packs into (n + 1) // 2 bytes, the last one "
             "holding the last value and a 0 in its high nibble; unpack_int4 is told n "
             "so that it can drop that padding.")
def _(pack_int4, unpack_int4):
    q = int4_values(6, (4, 9))
    got = _packed(pack_int4, q)  # a lost last value is named here
    _first_difference(_bytes(got), reference_pack(q), f"pack_int4(q {tuple(q.shape)})",
                      fmt=_hex, basic=True)
    packed = reference_pack(q)
    values = _unpacked(unpack_int4, packed, 9)  # returned padding is named here
    _first_difference(values, q, f"unpack_int4(packed {tuple(packed.shape)}, n=9)",
                      basic=True)


@q.case("pack returns uint8, unpack int8; their inputs left unchanged",
        kind="property",
        hint="Return the packed bytes as torch.uint8 and the unpacked values as "
             "torch.int8 (the dtypes of the format), built as new tensors.")
def _(pack_int4, unpack_int4):
    q = int4_values(7, (2, 6))
    before = q.clone()
    packed = call(pack_int4, q, check_mutation=False, name="pack_int4")
    if not torch.equal(q, before):
        raise CheckFailure("pack_int4 changed q in place.")
    packed = _tensor(packed, "pack_int4(q (2, 6))", (2, 3))
    if packed.dtype != torch.uint8:
        raise CheckFailure(f"pack_int4 returned dtype {packed.dtype}; expected "
                           "torch.uint8.")
    ref = reference_pack(q)
    kept = ref.clone()
    values = call(unpack_int4, ref, 6, check_mutation=False, name="unpack_int4")
    if not torch.equal(ref, kept):
        raise CheckFailure("unpack_int4 changed packed in place.")
    values = _tensor(values, "unpack_int4(packed (2, 3), n=6)", (2, 6))
    if values.dtype != torch.int8:
        raise CheckFailure(f"unpack_int4 returned dtype {values.dtype} "
                           f"({_short(values)}); expected torch.int8.")
