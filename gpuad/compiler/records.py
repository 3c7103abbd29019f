"""What counts as data in what a compiled function takes and returns: plain Python values, and
records (namedtuples, dataclass instances, SimpleNamespaces) of tensors and such values, which a
call's signature and binding read field by field (a batch), and a replay builds anew when the
function returns one.
"""
import copy
import dataclasses
import keyword
import types

from ..nn.module import PLAIN_VALUES as PYTHON_VALUES
from ..tensor import Tensor


def record_fields(value):
    """[(field name, value)] of a data record (a namedtuple, a dataclass instance or a
    types.SimpleNamespace holding tensors, numbers and containers of them): a batch passed as an
    argument, which the call's signature and binding read field by field, as a dict's entries,
    or a result. None for any other object, or a record that also holds a raw array, a model or
    another object (it stays one object, found as such)."""
    t = type(value)
    if isinstance(value, tuple) and hasattr(t, "_fields"):
        fields = list(zip(t._fields, value))
    elif t is types.SimpleNamespace:
        fields = list(vars(value).items())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    else:
        return None
    for name, field in fields:
        if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)
                and _data(field)):
            return None
    return fields


def tensors_in(value):
    """The tensors of a value, in order, looking into what a result's template looks into:
    tuples, lists, dicts and records."""
    t = type(value)
    if isinstance(value, Tensor):
        yield value
    elif t is tuple or t is list:
        for v in value:
            yield from tensors_in(v)
    elif t is dict:
        for v in value.values():
            yield from tensors_in(v)
    else:
        for _, v in record_fields(value) or ():
            yield from tensors_in(v)


def record_defaults(record):
    """The defaults a record's class declares for its fields (values the call did not compute)."""
    if isinstance(record, tuple):
        return list(type(record)._field_defaults.values())
    if dataclasses.is_dataclass(record):
        return [f.default for f in dataclasses.fields(record)
                if f.default is not dataclasses.MISSING]
    return []


def record_shell(record, names):
    """(an empty copy of a record, its field names) to build results on: the copy's fields are
    None (a namedtuple's is its type), so a program does not keep the traced call's tensors."""
    names = tuple(names)
    if isinstance(record, tuple):
        return type(record), names
    shell = copy.copy(record)  # no __init__ or __post_init__ runs, as in a replay's result
    for name in names:
        object.__setattr__(shell, name, None)  # (a frozen dataclass's fields too)
    return shell, names


def rebuild(shell, values):
    """A record like the one record_shell emptied, holding `values` in its fields' order."""
    empty, names = shell
    if isinstance(empty, type):
        return empty._make(values)
    record = copy.copy(empty)
    for name, value in zip(names, values):
        object.__setattr__(record, name, value)
    return record


def _data(value, depth=0):
    """Tensors, plain values, and tuples, lists and dicts of them."""
    t = type(value)
    if t is Tensor or t in PYTHON_VALUES:
        return True
    if depth < 3 and t in (tuple, list):
        return all(_data(v, depth + 1) for v in value)
    if depth < 3 and t is dict:
        return all(_data(v, depth + 1) for v in value.values())
    return False
