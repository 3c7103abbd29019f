"""torch's dtype queries: finfo and iinfo, the default float dtype, and type promotion's answers
(promote_types, result_type, can_cast) by the rules ops apply (ops.promoted_dtype)."""
import numpy

from . import backend, ops
from .tensor import Tensor

# the order of kinds in promotion (a float beats any integer whatever their sizes, as in torch)
_CATEGORY = ops.CATEGORY


def _dtype(op, d):
    try:
        return numpy.dtype(d)
    except TypeError:
        raise TypeError(f"{op}: expected a dtype such as gpuad.float32, got {d!r}") from None


class finfo:  # noqa: N801  (torch's name)
    """A float dtype's limits under torch.finfo's names: bits, eps, max, min, tiny (=
    smallest_normal), resolution and dtype (its name); finfo() describes the default dtype."""

    def __init__(self, dtype=None):
        d = backend.DEFAULT_FLOAT if dtype is None else _dtype("finfo", dtype)
        if d.kind not in "fc":
            raise TypeError(f"finfo: {d} is not a floating point dtype (use gpuad.iinfo)")
        info = numpy.finfo(d)
        self.bits, self.eps, self.max, self.min = info.bits, float(info.eps), float(info.max), \
            float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution, self.dtype = 10.0 ** -info.precision, info.dtype.name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801  (torch's name)
    """An integer dtype's limits under torch.iinfo's names: bits, min, max and dtype."""

    def __init__(self, dtype):
        d = _dtype("iinfo", dtype)
        if d.kind not in "iu":
            raise TypeError(f"iinfo: {d} is not an integer dtype (use gpuad.finfo)")
        info = numpy.iinfo(d)
        self.bits, self.min, self.max, self.dtype = info.bits, int(info.min), int(info.max), d.name

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def get_default_dtype():
    """The dtype Python floats and the float factories (zeros, randn, layers' parameters) get."""
    return backend.DEFAULT_FLOAT


def set_default_dtype(d):
    """Make `d` (a float dtype) the default, as torch.set_default_dtype: gpuad.tensor(1.5),
    gpuad.zeros(3) and new layers' parameters take it, and integer inputs of float ops promote
    to it."""
    d = _dtype("set_default_dtype", d)
    if d.kind != "f":
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the "
                        f"default type, got {d}")
    backend.DEFAULT_FLOAT = d


is_floating_point, is_complex = Tensor.is_floating_point, Tensor.is_complex


def promote_types(type1, type2):
    """The dtype an op on tensors of these two dtypes computes in, as torch.promote_types: the
    higher kind wins as it is (int64 with float16 is float16), the larger within a kind."""
    a, b = _dtype("promote_types", type1), _dtype("promote_types", type2)
    if _CATEGORY[a.kind] != _CATEGORY[b.kind]:
        return a if _CATEGORY[a.kind] > _CATEGORY[b.kind] else b
    result = numpy.promote_types(a, b)
    if _CATEGORY[result.kind] != _CATEGORY[a.kind]:  # int64 with uint64: numpy says float64
        raise TypeError(f"promote_types: promotion of {a} with {b} is not supported (as in torch)")
    return result


def result_type(tensor1, tensor2):
    """The dtype of an op on these two operands (tensors or numbers), as torch.result_type:
    dimensioned tensors beat 0-d ones and numbers within a kind."""
    raw = [a.array if isinstance(a, Tensor) else a for a in (tensor1, tensor2)]
    if not any(hasattr(a, "dtype") for a in raw):  # two numbers
        kind = max(map(ops.scalar_kind, raw))
        return (backend.bool_, backend.int64, backend.DEFAULT_FLOAT)[kind]
    promoted = ops.promoted_dtype(raw)
    return promoted if promoted is not None else next(a.dtype for a in raw if hasattr(a, "dtype"))


def can_cast(from_, to):
    """Whether torch lets a value of dtype `from_` be written into `to` (in-place ops, out=): not
    down a kind (float into an integer, anything but bool into bool)."""
    a, b = _dtype("can_cast", from_), _dtype("can_cast", to)
    return _CATEGORY[b.kind] >= _CATEGORY[a.kind]
