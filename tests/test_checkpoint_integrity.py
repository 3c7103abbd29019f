"""A damaged checkpoint never loads silently: gpuad.save records a CRC-32 of every array and of the
manifest, gpuad.load checks them and names the file and the first damaged array. A fuzz test damages
a real training checkpoint a few hundred ways and loads each copy in a child process (so a crash,
a hang or a runaway allocation fails the test): each must raise a ValueError naming its file or
give back exactly the saved values. Checkpoints saved without checksums still load, with a warning.

    PYTHONPATH=. python tests/test_checkpoint_integrity.py   # the checksums' cost, 100 MB loads
"""
import contextlib
import importlib
import io
import json
import os
import pathlib
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import safetensors.numpy
from test_serialization import refused

import gpuad
import gpuad.nn.functional as F
from gpuad import nn, optim, serialization
from gpuad.serialization import load, save

ROOT = pathlib.Path(__file__).resolve().parent.parent


def training_checkpoint():
    """What scripts/train_mnist.py saves, for a small model after two Adam steps, plus the dtypes
    and shapes a checkpoint may hold (int64 and 0-d buffers, bool, float16, float64, empty)."""
    gpuad.manual_seed(3)
    model = nn.Sequential(nn.Linear(8, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        loss = F.cross_entropy(model(gpuad.randn(5, 8)), gpuad.tensor([0, 1, 2, 1, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 2,
            "rng": gpuad.get_rng_state(), "args": {"lr": 0.01, "model": "mlp", "resume": False},
            "extra": {"mask": gpuad.tensor([True, False, True]), "empty": gpuad.zeros(0, 3),
                      "half": gpuad.randn(4).half(), "double": np.arange(5.0),
                      "count": np.int64(-3)}}


def child_env():
    """The environment for a child process that imports this gpuad."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def header_of(payload):
    (size,) = struct.unpack("<Q", payload[:8])
    return size, json.loads(payload[8:8 + size])


def with_header(payload, header):
    """The file with its safetensors header replaced (the data section kept as it is)."""
    size, _ = header_of(payload)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + payload[8 + size:]


# ---- what is recorded -------------------------------------------------------------------------
def test_every_array_and_the_manifest_carry_a_crc32(tmp_path):
    path = tmp_path / "ck.safetensors"
    save(training_checkpoint(), path)
    payload = path.read_bytes()
    _, header = header_of(payload)
    assert list(header["__metadata__"]) == ["gpuad"]  # one entry: a checkpoint's bytes repeat
    text = header["__metadata__"]["gpuad"]
    manifest = json.loads(text)
    blank = text.replace(manifest["crc32"], "--------")
    assert manifest["crc32"] == f"{zlib.crc32(blank.encode()):08x}"
    sums = manifest["checksums"]
    assert sums["algorithm"] == "crc32"
    arrays = safetensors.numpy.load_file(path)  # still a plain safetensors file
    assert list(sums["arrays"]) == [n for n in sums["arrays"] if n in arrays] and \
        set(sums["arrays"]) == set(arrays)
    assert list(sums["arrays"])[:2] == ["model.0.weight", "model.0.bias"]  # in saved order
    for name, (crc, dtype, shape) in sums["arrays"].items():
        assert crc == zlib.crc32(arrays[name].tobytes()), name
        assert (dtype, shape) == (arrays[name].dtype.str, list(arrays[name].shape)), name


def test_the_same_object_saves_to_the_same_bytes(tmp_path):
    obj = training_checkpoint()
    for i in range(4):
        save(obj, tmp_path / f"{i}.ck")
    assert len({(tmp_path / f"{i}.ck").read_bytes() for i in range(4)}) == 1


def test_the_fast_crc32_is_zlibs():
    isal_zlib = pytest.importorskip("isal.isal_zlib")
    data = np.random.default_rng(0).bytes(100_003)
    for start in (0, 1, 0xDEADBEEF):
        assert isal_zlib.crc32(data, start) == zlib.crc32(data, start)
    assert serialization.crc32 is isal_zlib.crc32


# ---- each kind of damage, named ---------------------------------------------------------------
def test_damaged_arrays_are_named_first_in_saved_order(tmp_path):
    path = tmp_path / "ck"
    save(training_checkpoint(), path)
    payload = bytearray(path.read_bytes())
    size, header = header_of(bytes(payload))
    begin = 8 + size

    def flip(name):
        payload[begin + header[name]["data_offsets"][0] + 1] ^= 0x10

    flip("optimizer.state.0.exp_avg")
    path.write_bytes(payload)
    refused(path, "damaged", "'optimizer.state.0.exp_avg'", "CRC-32")
    flip("model.3.weight")  # saved before the optimizer state: reported first
    path.write_bytes(payload)
    refused(path, "damaged", "'model.3.weight'")


def test_each_kind_of_damage_has_a_named_error(tmp_path):
    good = tmp_path / "good"
    save(training_checkpoint(), good)
    payload = good.read_bytes()
    size, header = header_of(payload)
    path = tmp_path / "bad"
    cases = {
        "truncated in the data": (payload[:-5], "(truncated?)"),
        "truncated in the header": (payload[:size // 2], "header claims"),
        "length field 2**63": (struct.pack("<Q", 2**63) + payload[8:], "header claims"),
        "zeros over the tail": (payload[:-40] + bytes(40), "CRC-32"),
        "bytes prepended": (b"\0" * 8 + payload, "not a gpuad checkpoint"),
        "garbage in the manifest": (payload.replace(b"requires_grad", b"rEqu1res_grad"),
                                    "manifest does not match its CRC-32"),
    }
    manifest = json.loads(header["__metadata__"]["gpuad"])
    del manifest["crc32"]
    no_crc = {**header, "__metadata__": {"gpuad": json.dumps(manifest)}}
    cases["the manifest's CRC-32 removed"] = (with_header(payload, no_crc),
                                              "manifest does not match its CRC-32")
    manifest = json.loads(header["__metadata__"]["gpuad"])
    manifest["root"]["dict"][2][1] = 3  # "epoch": 2 -> 3, the CRC-32 kept
    edited = {**header, "__metadata__": {"gpuad": json.dumps(manifest)}}
    cases["an edited manifest"] = (with_header(payload, edited), "does not match its CRC-32")
    retyped = json.loads(json.dumps(header))
    retyped["model.0.weight"]["dtype"] = "I32"  # same size: safetensors cannot tell
    cases["a dtype changed"] = (with_header(payload, retyped), "saved as <f4 [6, 8]")
    extra = json.loads(json.dumps(header))
    extra["smuggled"] = {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}
    cases["an array added"] = (with_header(payload, extra), "'smuggled'")
    for what, (data, reason) in cases.items():
        path.write_bytes(data)
        message = refused(path)
        assert reason in message, (what, message)


def test_file_objects_are_checked_too(tmp_path):
    buffer = io.BytesIO()
    save(training_checkpoint(), buffer)
    payload = bytearray(buffer.getvalue())
    payload[-3] ^= 1
    with pytest.raises(ValueError, match="the file object is a damaged gpuad checkpoint"):
        load(io.BytesIO(bytes(payload)))
    path = tmp_path / "ck"
    path.write_bytes(payload)
    with open(path, "rb") as f, pytest.raises(ValueError, match=f"{path} is a damaged"):
        load(f)


def resealed(payload, manifest):
    """The file with its manifest replaced and given a valid CRC-32, as gpuad.save seals it."""
    _, header = header_of(payload)
    blank = json.dumps({**manifest, "crc32": "--------"})
    text = blank.replace("--------", f"{zlib.crc32(blank.encode()):08x}", 1)
    return with_header(payload, {**header, "__metadata__": {"gpuad": text}})


def test_the_header_must_lay_the_arrays_out_as_safetensors_does(tmp_path):
    good = tmp_path / "good"
    save(training_checkpoint(), good)
    payload = good.read_bytes()
    _, header = header_of(payload)
    manifest = json.loads(header["__metadata__"]["gpuad"])
    path = tmp_path / "bad"

    def edited(edit, reseal=False):
        new = json.loads(json.dumps(header))
        edit(new, manifest_copy := json.loads(json.dumps(manifest)))
        return resealed(with_header(payload, new), manifest_copy) if reseal \
            else with_header(payload, new)

    def set_dtype(h, m, code, saved):
        h["model.0.weight"]["dtype"] = code
        m["checksums"]["arrays"]["model.0.weight"][1] = saved

    def overlap(h, m):  # the bias (24 bytes) moved over the start of the weight
        begin = h["model.0.weight"]["data_offsets"][0]
        h["model.0.bias"]["data_offsets"] = [begin, begin + 24]

    def reshape(h, m):
        h["model.0.weight"]["shape"] = [6, 7]
        m["checksums"]["arrays"]["model.0.weight"][2] = [6, 7]

    cases = {
        "appended bytes": (payload + bytes(8), "8 bytes follow its last array"),
        "unknown dtype": (edited(lambda h, m: set_dtype(h, m, "X9", "<f4")),
                          "dtype X9 and shape [6, 8] in its header, which safetensors never"),
        "object dtype": (edited(lambda h, m: set_dtype(h, m, "F32", "|O"), reseal=True),
                         "is float32 (6, 8) but was saved as |O [6, 8]"),
        "negative dimension": (edited(lambda h, m: h["model.0.weight"].update(shape=[-6, -8])),
                               "shape [-6, -8] in its header"),
        "overlapping arrays": (edited(overlap), "where the arrays before it end at"),
        "shape and size disagree": (edited(reshape, reseal=True),
                                    "'model.0.weight' is float32 (6, 7) but its header gives "
                                    "it 192 bytes"),
    }
    for what, (data, reason) in cases.items():
        path.write_bytes(data)
        message = refused(path, "damaged")
        assert reason in message, (what, message)
    # the same bytes, with two arrays' offsets swapped: they tile the data no more
    swapped = json.loads(json.dumps(header))
    first, second = swapped["model.0.bias"], swapped["model.3.bias"]
    first["data_offsets"], second["data_offsets"] = second["data_offsets"], first["data_offsets"]
    path.write_bytes(with_header(payload, swapped))
    refused(path, "damaged")


def big_checkpoint():
    """More than serialization._OVERLAP_BYTES of data, so its checksums run on the helper thread:
    one array of several chunks, then many small ones that travel to it in batches."""
    rng = np.random.default_rng(1)
    return {"big": rng.standard_normal(serialization._OVERLAP_BYTES // 4 + 12345,
                                       dtype=np.float32),
            "small": [rng.integers(0, 9, i) for i in range(200)], "flag": gpuad.tensor(True)}


def test_a_big_checkpoint_is_checked_while_it_is_read(tmp_path):
    obj = big_checkpoint()
    path = tmp_path / "big.ck"
    save(obj, path)
    back = load(path)
    assert back["big"].tobytes() == obj["big"].tobytes()
    assert all(a.tobytes() == b.tobytes() and a.dtype == b.dtype
               for a, b in zip(back["small"], obj["small"]))
    payload = bytearray(path.read_bytes())
    size, header = header_of(bytes(payload))
    for name, at in (("big", serialization._CHUNK_BYTES * 3 + 5), ("small.150", 7)):
        damaged = bytearray(payload)
        damaged[8 + size + header[name]["data_offsets"][0] + at] ^= 4
        path.write_bytes(damaged)
        refused(path, f"the bytes of array {name!r} do not match their CRC-32")


def test_every_array_loaded_owns_its_memory(tmp_path):
    """A small tensor kept from a checkpoint must not pin the whole file's bytes."""
    save({**big_checkpoint(), "w": gpuad.ones(3)}, tmp_path / "ck")
    back = load(tmp_path / "ck")
    arrays = [back["big"], back["w"].numpy(), back["flag"].numpy(), *back["small"]]
    assert all(a.base is None and a.flags.owndata and a.flags.writeable for a in arrays)


def test_a_file_that_ends_while_it_is_read_is_named(tmp_path):
    """Truncated by another process after load took its size: in the header, in an array."""
    for obj in (training_checkpoint(), big_checkpoint()):
        save(obj, tmp_path / "ck")
        payload = (tmp_path / "ck").read_bytes()
        size, header = header_of(payload)
        for keep in (size // 2, 8 + size + header["model.0.bias" if "model" in obj
                                                  else "big"]["data_offsets"][0] + 9,
                     len(payload) - 1):
            shrunk = io.BytesIO(payload[:keep])
            with pytest.raises(ValueError) as info:
                serialization._restore("ck", shrunk, len(payload), gpuad.device("cpu"))
            assert str(info.value).startswith("gpuad.load: ck is a damaged gpuad checkpoint: "
                                              "it ended "), str(info.value)
            assert "(truncated?)" in str(info.value)


def test_checkpoints_saved_without_checksums_load_with_a_warning(tmp_path):
    obj = training_checkpoint()
    path = tmp_path / "old.ck"
    save(obj, path)
    payload = path.read_bytes()
    _, header = header_of(payload)
    manifest = json.loads(header["__metadata__"]["gpuad"])
    del manifest["checksums"], manifest["crc32"]  # what gpuad.save wrote before checksums
    header["__metadata__"] = {"gpuad": json.dumps(manifest)}
    path.write_bytes(with_header(payload, header))
    with pytest.warns(UserWarning, match=r"old\.ck has no checksums .* cannot be detected") as seen:
        back = load(path)
    assert len(seen) == 1 and "\n" not in str(seen[0].message)
    np.testing.assert_array_equal(back["model"]["0.weight"].numpy(),
                                  obj["model"]["0.weight"].numpy())
    assert back["epoch"] == 2


# ---- the fuzz test ----------------------------------------------------------------------------
CHILD = r"""
import json, os, resource, sys, warnings
import numpy as np
import gpuad

folder = sys.argv[1]
reference = gpuad.load(os.path.join(folder, "original.ck"))


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, gpuad.Tensor):
        a, b = a.numpy(), b.numpy()
    if isinstance(a, (np.ndarray, np.generic)):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


# a runaway allocation fails at once instead of swapping: 1 GiB more than after the imports
with open("/proc/self/status") as f:
    vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))

for name in sorted(os.listdir(folder)):
    if name == "original.ck":
        continue
    path = os.path.join(folder, name)
    print(json.dumps({"start": name}), flush=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            back = gpuad.load(path)
        ok = same(back, reference) and not caught
        outcome, detail = ("same" if ok else "wrong"), [str(w.message) for w in caught]
    except ValueError as e:
        outcome, detail = ("error" if path in str(e) else "unnamed error"), str(e)
    except Exception as e:
        outcome, detail = "crash", f"{type(e).__name__}: {e}"
    print(json.dumps({"file": name, "outcome": outcome, "detail": detail}), flush=True)
"""


def mutations(payload, rng):
    """(kind, bytes) pairs: ~330 damaged copies of a checkpoint."""
    n = len(payload)
    size, _ = header_of(payload)
    start = payload.index(b'"gpuad":"') + 9  # the manifest, a JSON string inside the header
    stop = payload.index(b'"', payload.index(b'\\"root\\"', start) + 10)

    def flip(pos, bit):
        b = bytearray(payload)
        b[pos] ^= 1 << bit
        return bytes(b)

    def overwrite(pos, new):
        return payload[:pos] + new + payload[pos + len(new):]

    for pos in range(8):  # the length prefix, every byte once
        yield "flip", flip(pos, int(rng.integers(8)))
    for region, count in (((8, 8 + size), 70), ((start, stop), 30), ((8 + size, n), 60)):
        for pos in rng.integers(*region, size=count):
            yield "flip", flip(int(pos), int(rng.integers(8)))
    cuts = set(range(17)) | {8 + size - 1, 8 + size, 8 + size + 1, n - 1}
    cuts |= {int(c) for c in rng.integers(0, n, size=40)}
    for cut in sorted(cuts):
        yield "truncated", payload[:cut]
    for claimed in (2**63, 2**64 - 1, 2**63 - 1, 2**32, 2**31, n, n - 7, size + 1, size - 1, 1, 0):
        yield "length field", struct.pack("<Q", claimed) + payload[8:]
    for _ in range(20):  # random bytes over part of the manifest
        pos = int(rng.integers(start, stop - 16))
        yield "manifest garbage", overwrite(pos, rng.bytes(int(rng.integers(1, 16))))
    for _ in range(20):  # JSON-looking garbage, escapes and quotes included
        pos = int(rng.integers(start, stop - 8))
        junk = bytes(rng.choice(list(b'{}[]",:\\0123456789 naeltru'), int(rng.integers(1, 8))))
        yield "manifest garbage", overwrite(pos, junk)
    for k in (1, 2, 3, 4, 8, 16, 64, 100, 500, n // 4, n // 2, n - 8 - size, n - 8, n):
        yield "zero tail", payload[:max(0, n - k)] + bytes(min(k, n))
    for prefix in (b"\0", b"\0" * 8, b"\xff" * 8, payload[:8], payload[:16], b"PK\x03\x04",
                   b"\x80\x04", b"garbage!", rng.bytes(3), rng.bytes(8), rng.bytes(13)):
        yield "prepended", prefix + payload
    for suffix in (b"\0", b"\0" * 8, rng.bytes(100)):
        yield "appended", payload + suffix
    for _ in range(20):  # a block of the data overwritten with random bytes
        pos = int(rng.integers(8 + size, n - 32))
        yield "data garbage", overwrite(pos, rng.bytes(int(rng.integers(1, 32))))


def test_fuzz_a_damaged_checkpoint_never_loads_silently_crashes_or_hangs(tmp_path):
    """~330 damaged copies loaded in a child process under a 1 GiB allocation cap and a timeout:
    each raises a ValueError that names its file or returns exactly the saved values. About 3 s."""
    folder = tmp_path / "fuzz"
    folder.mkdir()
    save(training_checkpoint(), folder / "original.ck")
    payload = (folder / "original.ck").read_bytes()
    kinds = {}
    for i, (kind, data) in enumerate(mutations(payload, np.random.default_rng(14))):
        name = f"m{i:03d}-{kind.replace(' ', '-')}.ck"
        (folder / name).write_bytes(data)
        kinds[name] = (kind, data == payload)
    assert len(kinds) >= 300
    try:
        run = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True,
                             text=True, timeout=120, env=child_env())
    except subprocess.TimeoutExpired as e:
        started = [line for line in (e.stdout or b"").decode().splitlines() if "start" in line]
        pytest.fail(f"the child hung; last file started: {started[-1:]}")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    results = {line["file"]: line for line in lines if "file" in line}
    if run.returncode != 0 or len(results) != len(kinds):
        last = [line["start"] for line in lines if "start" in line][-1:]
        pytest.fail(f"the child died (status {run.returncode}) loading {last}:\n{run.stderr}")
    bad = {name: r for name, r in results.items() if r["outcome"] not in ("same", "error")}
    assert not bad, json.dumps(bad, indent=1)[:3000]
    loaded = [name for name, r in results.items() if r["outcome"] == "same"]
    changed = [name for name in loaded if not kinds[name][1]]
    # only bytes that carry nothing may change unnoticed: appended ones, zeros over zeros
    assert {kinds[name][0] for name in changed} <= {"appended", "zero tail"}, changed


# ---- the cost of checking --------------------------------------------------------------------
class Unchecked:
    """serialization._Checksums with the CRC step skipped: the same reading, unverified."""

    def __init__(self, spans, background):
        pass

    def add(self, name, chunk):
        pass

    def first_damaged(self):
        return None


@contextlib.contextmanager
def crc_step(checked, crc=None):
    """gpuad.load with (checked) or without its CRC-32s, computed by `crc` ("isal", "zlib", or
    None: the one gpuad picked, isal when it imports). Gives the crc32 module's name."""
    saved = serialization._Checksums, serialization.crc32
    if not checked:
        serialization._Checksums = Unchecked
    if crc is not None:
        module = {"isal": "isal.isal_zlib", "zlib": "zlib"}[crc]
        serialization.crc32 = importlib.import_module(module).crc32
    try:
        yield serialization.crc32.__module__
    finally:
        serialization._Checksums, serialization.crc32 = saved


def timed_load(path, checked, crc=None):
    """Seconds of one gpuad.load(path), wall-clock and CPU (every thread)."""
    with crc_step(checked, crc):
        wall, cpu = time.perf_counter(), time.process_time()
        load(path)
        return time.perf_counter() - wall, time.process_time() - cpu


def measure_overhead(megabytes=100, repeats=9, folder=".", cold=False, fresh_process=False,
                     crc=None):
    """Best-of-`repeats` seconds of gpuad.load of a `megabytes` MB checkpoint with and without
    verifying its CRC-32s (the same reading; crc: "isal", "zlib" or None, gpuad's pick), in
    wall-clock and CPU time. cold=True drops the file from the page cache before each load, so it
    is read from the disk; fresh_process=True times each load as the first in a new process (what
    resuming a run costs: no memory that an earlier load freed is reused)."""
    rng = np.random.default_rng(0)
    rows = max(1, int(megabytes * 1e6 / 4 / 10 / 2500))
    obj = {"model": {f"layer{i}.weight": gpuad.tensor(
        rng.standard_normal((rows, 2500), dtype=np.float32)) for i in range(10)}}
    path = os.path.join(folder, ".overhead.ck")
    save(obj, path)
    del obj
    size = os.path.getsize(path)
    with crc_step(True, crc) as crc_module:
        for _ in range(0 if fresh_process else min(repeats, 4)):  # until malloc settles
            load(path)
    best = {}
    try:
        for i in range(repeats):
            for checked in ((True, False) if i % 2 else (False, True)):
                if cold:
                    fd = os.open(path, os.O_RDONLY)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    os.close(fd)
                if fresh_process:
                    run = subprocess.run(
                        [sys.executable, __file__, "--timed-load", path,
                         "checked" if checked else "unchecked", crc or ""],
                        capture_output=True, text=True, check=True, env=child_env())
                    wall, cpu = json.loads(run.stdout.splitlines()[-1])
                else:
                    wall, cpu = timed_load(path, checked, crc)
                for key, value in (((checked, "wall"), wall), ((checked, "cpu"), cpu)):
                    best[key] = min(best.get(key, value), value)
    finally:
        os.remove(path)
    return {"megabytes": round(size / 1e6, 1), "page_cache": "cold" if cold else "warm",
            "process": "fresh" if fresh_process else "warm", "crc32": crc_module,
            **{f"{clock}_s": {"checked": round(best[True, clock], 4),
                              "unchecked": round(best[False, clock], 4),
                              "overhead": round(best[True, clock] / best[False, clock] - 1, 3)}
               for clock in ("wall", "cpu")}}


def test_measure_overhead_runs(tmp_path):
    cases = [{}, {"fresh_process": True, "crc": "zlib"}]
    if hasattr(os, "posix_fadvise"):
        cases.append({"cold": True})
    for case in cases:
        result = measure_overhead(megabytes=1, repeats=1, folder=tmp_path, **case)
        assert set(result["wall_s"]) == {"checked", "unchecked", "overhead"}
    assert result["crc32"] == serialization.crc32.__module__
    assert measure_overhead(1, 1, tmp_path, crc="zlib")["crc32"] == "zlib"


def test_unchecked_timing_skips_only_the_crc(tmp_path):
    """measure_overhead's 'unchecked' loads the same arrays and misses the damage."""
    path = tmp_path / "ck"
    save(training_checkpoint(), path)
    payload = bytearray(path.read_bytes())
    payload[-3] ^= 1
    path.write_bytes(payload)
    with crc_step(False):
        assert load(path)["epoch"] == 2
    refused(path, "CRC-32")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--timed-load"]:  # one load in this fresh process, for measure_overhead
        _, _, path, checked, crc = sys.argv
        print(json.dumps(timed_load(path, checked == "checked", crc or None)))
        sys.exit()
    crcs = [None] if serialization.crc32 is zlib.crc32 else [None, "zlib"]
    for crc in crcs:
        for how in ({}, {"cold": True}, {"fresh_process": True}):
            if how.get("cold") and not hasattr(os, "posix_fadvise"):
                continue
            print(json.dumps(measure_overhead(crc=crc, **how)), flush=True)
