"""Checkpoints: gpuad.save / gpuad.load of nested containers of Tensors, arrays and Python values.

One safetensors file: every array (copied to the host) is a named entry, and the structure is a JSON
manifest in the file's metadata. Loading never unpickles anything; saving to a path is atomic (temp
file, fsync, os.replace), so a crash mid-save leaves the previous checkpoint intact (plus, at worst,
a hidden temp file, which remove_stale_temp_files clears). Binary file objects work too, as with
torch.save/torch.load: the bytes are written to (or read from) them, and the caller owns them. The
manifest records the CRC-32, dtype and shape of every array, and the metadata the CRC-32 of the
manifest, so damage done to the file after it was written (bit flips, truncation, a zero-filled
tail) is refused on load, never loaded.
"""
import io
import json
import math
import os
import queue
import re
import struct
import threading
import time
import uuid
import warnings

import numpy
import safetensors
import safetensors.numpy

from . import backend
from .tensor import Tensor

try:  # ISA-L's CRC-32 (pip install isal) is zlib's, computed 3-4x faster
    from isal.isal_zlib import crc32
except ImportError:
    from zlib import crc32

FORMAT, VERSION = "gpuad.checkpoint", 1
_SCALARS = (bool, int, float, str, type(None))
# Test hook: seconds to pause between the fsynced temp file and os.replace, so that the crash
# tests can kill -9 a process mid-save on purpose (tests/test_reliability_crash.py).
_SAVE_DELAY_ENV = "GPUAD_TEST_SAVE_DELAY"
_BLANK = "--------"  # the manifest's "crc32" while its CRC-32 is computed
_CHUNK_BYTES = 1 << 22  # load reads big arrays, and checks them, this many bytes at a time
_OVERLAP_BYTES = 1 << 24  # files with more data than this are checked on a helper thread


def save(obj, f):
    """Write `obj` to `f`, like torch.save: a path (written atomically) or a binary file object
    (seekable or not; its bytes are written at its position). Checkpoints hold dicts (keys
    str/int/float/bool/None, order kept), lists, tuples, Tensors (requires_grad kept, .grad not),
    numpy/CuPy arrays and scalars, and bool/int/float/str/None; the same Tensor or array reached
    twice is stored once. A model or optimizer is refused: save its state_dict()."""
    target = _target("save", f, "write")
    arrays, seen = {}, {}

    def encode(value, where):
        if isinstance(value, Tensor) or backend.is_array(value) or isinstance(value, numpy.generic):
            key = id(value)
            if key not in seen:  # store once; name entries by their path, for other tools
                name = where or "_"
                while name in arrays:
                    name += "'"
                raw = value.array if isinstance(value, Tensor) else value
                host = backend.asnumpy(raw)  # C order, little-endian; not ascontiguousarray (0-d)
                arrays[name] = host.astype(host.dtype.newbyteorder("<"), order="C", copy=False)
                seen[key] = name
            if isinstance(value, Tensor):
                return {"tensor": seen[key], "requires_grad": value.requires_grad}
            return {"scalar" if isinstance(value, numpy.generic) else "array": seen[key]}
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, dict):
            for k in value:
                if not isinstance(k, _SCALARS):
                    raise TypeError(f"gpuad.save: {where or 'the root'} has a dict key of type "
                                    f"{type(k).__name__}; keys must be str, int, float, bool or "
                                    f"None")
            return {"dict": [[k, encode(v, _join(where, k))] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            items = [encode(v, _join(where, i)) for i, v in enumerate(value)]
            return {"tuple" if isinstance(value, tuple) else "list": items}
        if callable(getattr(value, "state_dict", None)):
            name = type(value).__name__
            raise TypeError(f"gpuad.save: {where or 'the root'} is a {name}; PyTorch pickles whole "
                            f"modules and optimizers, gpuad never pickles. Save its state instead: "
                            f"gpuad.save(obj.state_dict(), f), and restore it into a new {name} "
                            f"with obj.load_state_dict(gpuad.load(f))")
        raise TypeError(f"gpuad.save: can't save {where or 'the root'} of type "
                        f"{type(value).__name__}; checkpoints hold dicts, lists, tuples, Tensors, "
                        f"arrays and bool/int/float/str/None")

    payload = _payload(encode(obj, ""), arrays)
    if isinstance(target, str):
        _atomic_write(target, payload)
    else:
        target.write(payload)
        if hasattr(target, "flush"):
            target.flush()


def _payload(root, arrays):
    """The file's bytes: the arrays, and in the metadata the manifest with each array's checksum,
    dtype and shape, and its own checksum: the CRC-32 of the manifest with "crc32" blank. (One
    metadata entry: safetensors writes several in a random order, and a checkpoint's bytes must
    repeat.)"""
    sums = {name: [_crc32(a), _le(a.dtype).str, list(a.shape)] for name, a in arrays.items()}
    blank = json.dumps({"format": FORMAT, "version": VERSION, "crc32": _BLANK,
                        "checksums": {"algorithm": "crc32", "arrays": sums}, "root": root})
    manifest = blank.replace(_BLANK, f"{crc32(blank.encode()):08x}", 1)  # the first: ours
    return safetensors.numpy.save(arrays, metadata={"gpuad": manifest})


def _crc32(array):
    return crc32(array.reshape(-1).view(numpy.uint8))  # the bytes that safetensors writes


def _target(op, f, method):
    """A path as a str, or the file object itself."""
    if hasattr(f, method):
        if isinstance(getattr(f, "mode", "b"), str) and "b" not in getattr(f, "mode", "b"):
            raise TypeError(f"gpuad.{op}: the file object is open in text mode "
                            f"({f.mode!r}); open it in binary mode ('{method[0]}b')")
        return f
    try:
        return os.fspath(f)
    except TypeError:
        raise TypeError(f"gpuad.{op}: expected a path or a binary file object with .{method}(), "
                        f"got {type(f).__name__}") from None


def _load_device(map_location, device):
    """torch.load's map_location as gpuad's device: a device, a device string, or a dict whose
    targets all name one device. gpuad checkpoints record no source device (arrays are stored
    from the host), so that one device is where every Tensor goes."""
    if map_location is None:
        return backend.device(device)
    target = map_location
    if isinstance(map_location, dict):
        targets = {str(backend.device(str(v))) for v in map_location.values()}
        if len(targets) != 1:
            raise ValueError(f"gpuad.load: map_location={map_location!r} maps to several devices; "
                             f"gpuad checkpoints record no source device, so pass the one "
                             f"device every tensor should land on (map_location='cpu')")
        target = targets.pop()
    elif callable(map_location):
        raise TypeError("gpuad.load: a callable map_location remaps torch storages, which gpuad "
                        "checkpoints do not have; pass the device every tensor should land on "
                        "(map_location='cpu' or 'cuda:0')")
    target = target if isinstance(target, backend.Device) else backend.device(str(target))
    if device is not None and backend.device(device) != target:
        raise ValueError(f"gpuad.load: map_location={str(target)!r} and device={str(device)!r} "
                         f"disagree; pass one of them")
    return target


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         device=None):
    """Read a checkpoint written by gpuad.save from a path or a binary file object, like
    torch.load(weights_only=True): Tensors land on `device` (or map_location, torch's name for
    it; default cpu), arrays come back as numpy arrays. Anything else is refused: nothing is ever
    unpickled, whatever weights_only says (mmap is accepted; every array is read into its own
    memory). So is a checkpoint whose bytes no longer match the checksums it was saved with (a
    ValueError naming the file and the first damaged array); one saved before gpuad wrote
    checksums loads with a warning that it cannot be verified."""
    if pickle_module is not None:
        raise ValueError("gpuad.load: pickle_module is not supported; gpuad checkpoints are "
                         "safetensors files and are never unpickled")
    dev = _load_device(map_location, device)
    source = _target("load", f, "read")
    if isinstance(source, str):
        with open(source, "rb") as file:
            return _restore(source, file, os.fstat(file.fileno()).st_size, dev)
    payload = source.read()  # from its position, as torch.load reads; it may not seek
    if isinstance(payload, str):
        raise TypeError("gpuad.load: the file object gave text; open it in binary mode ('rb')")
    payload = bytes(payload)
    path = getattr(source, "name", None) or "the file object"
    return _restore(path, io.BytesIO(payload), len(payload), dev)


def _restore(path, file, size, dev):
    """The object that a checkpoint of `size` bytes, read from `file`, holds, once its bytes are
    checked against its checksums."""
    header, data_start = _header(path, file, size)
    manifest, sums = _manifest(path, header)
    if sums is None:
        arrays = _unverified_arrays(path, file)
    else:
        arrays = _verified_arrays(path, file, _layout(path, header, size - data_start, sums),
                                  data_start)
    tensors = {}

    def decode(node):
        if isinstance(node, _SCALARS):
            return node
        if not isinstance(node, dict) or len(node) not in (1, 2):
            raise ValueError(f"bad manifest entry {str(node)[:80]}")
        kind, value = next(iter(node.items()))
        if kind in ("dict", "list", "tuple") and isinstance(value, list):
            if kind == "dict":
                return {k: decode(v) for k, v in value}
            return (tuple if kind == "tuple" else list)(decode(v) for v in value)
        if kind in ("tensor", "array", "scalar") and value in arrays:
            if kind == "array":
                return arrays[value]
            if kind == "scalar":
                return arrays[value][()]
            if value not in tensors:
                host = arrays[value] if arrays[value].flags.writeable else arrays[value].copy()
                tensors[value] = Tensor(backend.to_device(host, dev), node.get("requires_grad"))
            return tensors[value]
        raise ValueError(f"bad manifest entry {str(node)[:80]}")

    try:
        obj = decode(manifest["root"])
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError, RecursionError) as e:
        raise ValueError(f"gpuad.load: {path} has a corrupt gpuad manifest: {e}") from None
    if sums is None:
        warnings.warn(f"gpuad.load: {path} has no checksums (saved by an older gpuad), so "
                      f"damage to it cannot be detected; gpuad.save it again to add them",
                      UserWarning, stacklevel=3)
    return obj


def _join(where, key):
    return f"{where}.{key}" if where else str(key)


def _le(dtype):
    return dtype.newbyteorder("<")


def _damaged(path, reason):
    return ValueError(f"gpuad.load: {path} is a damaged gpuad checkpoint: {reason}; restore it "
                      f"from a good copy")


def _refuse(path, reason, payload=b""):
    if payload[:1] == b"\x80" or payload[:2] in (b"(d", b"(l", b"}q", b"]q"):
        reason += "; it looks like a pickle, which gpuad never loads (unpickling runs code)"
    elif payload[:4] == b"PK\x03\x04":
        reason += ("; it looks like a zip archive such as a torch.save file, whose pickled "
                   "data gpuad never loads")
    return ValueError(f"gpuad.load: {path} is not a gpuad checkpoint: {reason}")


def _read(path, file, count):
    """The next `count` bytes of the file; a file that ends sooner (truncated while it is read)
    is damaged."""
    data = file.read(count)
    if len(data) < count:
        raise _damaged(path, f"it ended {count - len(data)} bytes early (truncated?)")
    return data


def _header(path, file, size):
    """The safetensors header (a dict) and the offset of the data after it, or a ValueError saying
    why the file is not one. The length prefix is checked against the file's size first: a
    damaged one may claim up to 2**64 - 1 bytes."""
    if size < 8:
        raise _refuse(path, f"only {size} bytes long", file.read(8))
    prefix = _read(path, file, 8)  # enough to tell a pickle or a zip by
    (length,) = struct.unpack("<Q", prefix)
    if length > size - 8:
        raise _refuse(path, f"its header claims {length} bytes but the file has {size - 8} "
                            f"after the length prefix (truncated, or not a safetensors file)",
                      prefix)
    text = _read(path, file, length)
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        if FORMAT.encode() in text:
            raise _damaged(path, "its safetensors header is not valid JSON")
        raise _refuse(path, "its header is not safetensors JSON", prefix)
    return header, 8 + length


def _manifest(path, header):
    """The gpuad manifest and its array checksums (None for a file saved without them), once the
    manifest's own checksum is verified; a ValueError saying why there is none."""
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get("gpuad"), str):
        raise _refuse(path, "it is a safetensors file without a gpuad manifest (read it with "
                            "safetensors.numpy.load_file instead)")
    text = meta["gpuad"]
    try:
        manifest = json.loads(text)
        fmt, version = manifest["format"], manifest["version"]
    except (ValueError, TypeError, KeyError, RecursionError):
        if '"checksums": ' in text:
            raise _damaged(path, "its manifest is not valid JSON") from None
        raise _refuse(path, "its gpuad manifest is not valid JSON") from None
    recorded, checksums = manifest.get("crc32"), manifest.get("checksums")
    if recorded is not None or checksums is not None:  # else saved before checksums
        blank = text.replace(f'"crc32": "{recorded}"', f'"crc32": "{_BLANK}"', 1)
        if not (isinstance(recorded, str) and len(recorded) == 8 and blank != text
                and f"{crc32(blank.encode('utf-8', 'surrogatepass')):08x}" == recorded):
            raise _damaged(path, "its manifest does not match its CRC-32")
    if fmt != FORMAT or not isinstance(version, int) or version > VERSION:
        raise _refuse(path, f"format {fmt!r} version {version!r}; this gpuad reads {FORMAT!r} "
                            f"up to version {VERSION} (was it written by a newer gpuad?)")
    if recorded is None and checksums is None:
        return manifest, None  # load() warns that it cannot check
    if not isinstance(checksums, dict) or checksums.get("algorithm") != "crc32":
        raise _refuse(path, f"its checksums are {str(checksums)[:40]}; this gpuad knows crc32 "
                            f"(was it written by a newer gpuad?)")
    sums = checksums.get("arrays")
    if not isinstance(sums, dict) or not all(
            isinstance(s, list) and len(s) == 3 and isinstance(s[0], int)
            and isinstance(s[1], str) and isinstance(s[2], list) for s in sums.values()):
        raise _damaged(path, "its manifest lists malformed checksums")
    return manifest, sums


# safetensors' names of the dtypes it stores, as the (little-endian) numpy dtypes that gpuad.save
# records; a manifest's dtype string is only ever compared with these, never given to numpy
_DTYPES = {name: numpy.dtype(code) for name, code in (
    ("BOOL", "|b1"), ("U8", "|u1"), ("I8", "|i1"), ("U16", "<u2"), ("I16", "<i2"),
    ("U32", "<u4"), ("I32", "<i4"), ("U64", "<u8"), ("I64", "<i8"), ("F16", "<f2"),
    ("F32", "<f4"), ("F64", "<f8"), ("C64", "<c8"))}


def _layout(path, header, data_size, sums):
    """(name, CRC-32, first byte, end, dtype, shape) of every array in the order it was saved,
    each checked against the manifest and against safetensors' rules: its bytes are its dtype and
    shape's, and the arrays tile the data section, no gap, no overlap, nothing after them."""
    unlisted = [name for name in header if name != "__metadata__" and name not in sums]
    if unlisted:
        raise _damaged(path, f"it holds an array {unlisted[0]!r} that its manifest does not list")
    spans = []
    for name, (crc, saved_dtype, saved_shape) in sums.items():
        entry = header.get(name)
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) for o in offsets)):
            raise _damaged(path, f"array {name!r} is missing from its header")
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            raise _damaged(path, f"array {name!r} lies at bytes {begin}..{end} of a data section "
                                 f"of {data_size} bytes (truncated?)")
        code, shape = entry.get("dtype"), entry.get("shape")
        dtype = _DTYPES.get(code) if isinstance(code, str) else None
        if dtype is None or not (isinstance(shape, list)
                                 and all(type(n) is int and n >= 0 for n in shape)):
            raise _damaged(path, f"array {name!r} has dtype {str(code)[:20]} and shape "
                                 f"{str(shape)[:40]} in its header, which safetensors never "
                                 f"writes")
        if dtype.str != saved_dtype or shape != saved_shape:
            raise _damaged(path, f"array {name!r} is {dtype} {tuple(shape)} but was saved as "
                                 f"{saved_dtype} {saved_shape}")
        if dtype.itemsize * math.prod(shape) != end - begin:
            raise _damaged(path, f"array {name!r} is {dtype} {tuple(shape)} but its header "
                                 f"gives it {end - begin} bytes")
        spans.append((name, crc, begin, end, dtype, shape))
    covered = 0
    for name, _, begin, end, _, _ in sorted(spans, key=lambda span: span[2:4]):
        if begin != covered:
            raise _damaged(path, f"array {name!r} starts at byte {begin} of the data section, "
                                 f"where the arrays before it end at {covered}")
        covered = end
    if covered != data_size:
        raise _damaged(path, f"{data_size - covered} bytes follow its last array")
    return spans


def _verified_arrays(path, file, spans, data_start):
    """The arrays, each read from the file straight into its own memory (a tensor kept from a
    checkpoint pins no other's bytes), in file order and in chunks that _Checksums checks while
    the next ones are read; a ValueError naming the first array in saved order whose bytes do not
    match their CRC-32."""
    checksums = _Checksums(spans, background=sum(s[3] - s[2] for s in spans) > _OVERLAP_BYTES)
    arrays = {}
    try:
        file.seek(data_start)
        for name, _, begin, end, dtype, shape in sorted(spans, key=lambda span: span[2:4]):
            try:
                array = numpy.empty(shape, dtype)
            except ValueError as e:  # a 0-sized shape with a huge dimension, too many dimensions
                raise _damaged(path, f"array {name!r} has shape {shape} ({e})") from None
            flat = memoryview(array.reshape(-1).view(numpy.uint8))
            for start in range(0, end - begin, _CHUNK_BYTES):
                chunk = flat[start:start + _CHUNK_BYTES]
                filled = 0
                while filled < len(chunk):
                    count = file.readinto(chunk[filled:])
                    if not count:
                        raise _damaged(path, f"it ended inside array {name!r}, at byte "
                                             f"{data_start + begin + start + filled} (truncated?)")
                    filled += count
                checksums.add(name, chunk)
            arrays[name] = array
    finally:
        damaged = checksums.first_damaged()
    if damaged is not None:
        raise _damaged(path, f"the bytes of array {damaged!r} do not match their CRC-32")
    return arrays


class _Checksums:
    """The running CRC-32 of each array, fed the chunks as they are read: on a helper thread when
    `background` (crc32 releases the GIL), so that checking overlaps reading on a second core."""

    def __init__(self, spans, background):
        self.expected = [(name, crc) for name, crc, *_ in spans]
        self.crcs = dict.fromkeys((name for name, _ in self.expected), 0)
        self.batch, self.batch_bytes, self.error = [], 0, None
        self.queue = queue.SimpleQueue() if background else None
        if background:
            self.worker = threading.Thread(target=self._work, name="gpuad.load checksums",
                                           daemon=True)
            self.worker.start()

    def add(self, name, chunk):
        if self.queue is None:
            self.crcs[name] = crc32(chunk, self.crcs[name])
            return
        self.batch.append((name, chunk))  # many small arrays travel together
        self.batch_bytes += len(chunk)
        if self.batch_bytes >= _CHUNK_BYTES:
            self.queue.put(self.batch)
            self.batch, self.batch_bytes = [], 0

    def _work(self):
        try:
            while (batch := self.queue.get()) is not None:
                for name, chunk in batch:
                    self.crcs[name] = crc32(chunk, self.crcs[name])
        except BaseException as e:  # handed to the reader in first_damaged
            self.error = e

    def first_damaged(self):
        """The first array, in saved order, whose CRC-32 differs (None if none), once every chunk
        added is checked."""
        if self.queue is not None:
            self.queue.put(self.batch)
            self.queue.put(None)
            self.worker.join()
            if self.error is not None:
                raise self.error
        return next((name for name, crc in self.expected if self.crcs[name] != crc), None)


def _unverified_arrays(path, file):
    """The arrays of a checkpoint saved without checksums, as safetensors reads them."""
    file.seek(0)
    try:
        return safetensors.numpy.load(file.read())
    except (safetensors.SafetensorError, ValueError) as e:
        raise _damaged(path, f"truncated or corrupt ({e})") from None


def remove_stale_temp_files(path):
    """Delete the temp files that a save to `path` killed mid-write (kill -9, power loss) left
    next to it; they are never read. Call it only where no other process is saving to `path`.
    Returns the names removed."""
    folder = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(os.path.basename(path))}\.[0-9a-f]{{8}}\.tmp")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    removed = [name for name in names if pattern.fullmatch(name)]
    for name in removed:
        try:
            os.remove(os.path.join(folder, name))
        except FileNotFoundError:
            pass
    return removed


def _atomic_write(path, payload):
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if os.environ.get(_SAVE_DELAY_ENV):
            time.sleep(float(os.environ[_SAVE_DELAY_ENV]))  # the test hook above
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open directories
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
