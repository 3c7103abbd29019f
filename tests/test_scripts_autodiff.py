"""The teaching scripts trace_example and numeric_vs_autodiff, smoke-tested via main([...])."""
import json

import pytest
from test_scripts import load_script


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_trace_example_prints_the_founding_example(device, capsys):
    result = load_script("trace_example").main(["--device", device])
    out = capsys.readouterr().out
    assert "  v1  = mul(v-1, v0) = -12" in out and "  v3  = add(v1, v0)  = -16" in out
    assert "y = -17.0986;  x̄1 = v̄-1 = -4.33333, x̄2 = v̄0 = 4" in out
    (summary,) = json_lines(out)
    assert summary["y"] == pytest.approx(-17.10, abs=5e-3)
    assert summary["grad"] == [pytest.approx(-4.33, abs=5e-3), 4.0]
    assert summary["device"] == device and result.grads[1] == 4.0


def test_trace_example_json_rows_and_other_points(capsys):
    load_script("trace_example").main(["--x1", "2", "--x2", "0.5", "--json", "--ascii"])
    out = capsys.readouterr().out
    table = out[:out.index("\n{")]
    assert table.isascii() and "v0bar  = v3bar*dv3/dv0 + v1bar*dv1/dv0" in table
    rows = json_lines(out)
    forward = [r for r in rows if r.get("trace") == "forward"]
    reverse = [r for r in rows if r.get("trace") == "reverse"]
    assert [r["name"] for r in forward] == ["v-1", "v0", "v1", "v2", "v3", "v4"]
    assert [r["name"] for r in reverse] == ["v4", "v3", "v2", "v1", "v0", "v-1"]
    assert rows[-1]["grad"] == [pytest.approx(0.5 - 1 / 2), pytest.approx(2 + 1)]


@pytest.fixture(scope="module")
def quick_run():
    """One --quick run shared by the checks below (about half a second)."""
    import contextlib
    import io
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = load_script("numeric_vs_autodiff").main(["--quick", "--json"])
    return result, buffer.getvalue()


def test_numeric_vs_autodiff_tables_print(quick_run):
    result, out = quick_run
    assert "finite differences against autodiff, float32" in out
    assert "finite differences against autodiff, float64" in out
    assert "full gradient of f(x) = sum(sin(x)*x)" in out
    rows = json_lines(out)
    assert rows == result["errors"] + result["timings"]
    assert {r["h"] for r in result["errors"]} == {10.0 ** -k for k in range(1, 16)}


def test_central_beats_one_sided_at_moderate_steps(quick_run):
    errors = quick_run[0]["errors"]
    for r in errors:
        if (r["dtype"] == "float64" and r["h"] in (1e-2, 1e-3, 1e-4)) or \
                (r["dtype"] == "float32" and r["h"] == 1e-2):
            assert r["central"] < r["forward"] / 10, r


def test_round_off_takes_over_for_tiny_steps_in_float64(quick_run):
    errors = [r for r in quick_run[0]["errors"] if r["dtype"] == "float64"]
    for name in {r["function"] for r in errors}:
        col = {r["h"]: r for r in errors if r["function"] == name}
        for kind in ("forward", "central"):
            best = min(r[kind] for r in col.values())
            assert best < 1e-8, (name, kind)
            assert col[1e-15][kind] > 1e3 * best, (name, kind)  # it got worse again
            assert col[1e-15][kind] > col[1e-8 if kind == "forward" else 1e-5][kind]


def test_reverse_mode_beats_n_passes_for_large_n(quick_run):
    timings = quick_run[0]["timings"]
    largest = max(r["n"] for r in timings)
    mine = {r["method"]: r for r in timings if r["n"] == largest}
    assert largest == 1000 and "central_fd" in mine
    for method, r in mine.items():
        assert r["max_error"] < 1e-6, r
        if method != "reverse":
            assert r["seconds"] > 10 * mine["reverse"]["seconds"], (method, r, mine["reverse"])
            assert r["columns_measured"] >= 1
            assert r["extrapolated"] == (r["columns_measured"] < largest)


def test_numeric_vs_autodiff_plot_is_optional(tmp_path, capsys):
    path = tmp_path / "fd.png"
    load_script("numeric_vs_autodiff").main(["--quick", "--sizes", "10", "--plot", str(path)])
    out = capsys.readouterr().out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in out and not path.exists()
    else:
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"


def test_numeric_vs_autodiff_on_each_device(device, capsys):
    result = load_script("numeric_vs_autodiff").main(["--quick", "--sizes", "10", "20",
                                                      "--device", device])
    assert "full gradient" in capsys.readouterr().out
    assert [r["n"] for r in result["timings"] if r["method"] == "reverse"] == [10, 20]
