"""The command line: ``fastdescent info`` and ``fastdescent demo``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

import fastdescent as fd
from fastdescent import cli, demo


def test_info_names_backend_simd_and_threads(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    info = fd.backend_info()
    assert f"backend             {info['backend']}" in out
    assert f"SIMD level          {info['simd']}" in out
    assert f"threads             {info['threads']}" in out
    assert fd.__version__ in out


def test_console_script_is_installed():
    exe = shutil.which("fastdescent", path=os.path.dirname(sys.executable))
    assert exe is not None, "pip install should put the fastdescent command next to python"
    result = subprocess.run([exe, "info"], capture_output=True, text=True, check=True)
    assert "SIMD level" in result.stdout


def test_demo_prints_loss_per_epoch_and_fitted_line(capsys):
    assert cli.main(["demo", "--epochs", "4", "--points", "200", "--no-plots"]) == 0
    out = capsys.readouterr().out
    table = out.split("MSE after each epoch")[1].split("fitted line")[0].strip().splitlines()
    assert [row.split()[0] for row in table[1:]] == ["1", "2", "3", "4"]
    fitted = out.split("fitted line")[1].split("\n\n")[0].strip().splitlines()
    assert [row.split()[0] for row in fitted] == [label for label, _, _ in demo.DEFAULT_RACE]


@pytest.mark.parametrize("label,cls,options", demo.DEFAULT_RACE,
                         ids=[label for label, _, _ in demo.DEFAULT_RACE])
def test_demo_settings_recover_the_line(backend, label, cls, options):
    data = demo.make_line()
    best_m, best_c = data.least_squares()
    result = demo.fit_line(data, cls, options, epochs=20, batch_size=32, backend=backend)
    # Mini-batch noise keeps the last iterate near, not at, the least-squares answer.
    assert result.m == pytest.approx(best_m, abs=0.05)
    assert result.c == pytest.approx(best_c, abs=0.1)
    assert result.losses[-1] < 1.1 * data.mse(best_m, best_c)


def test_demo_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_demo_writes_its_gallery(tmp_path, capsys):
    import matplotlib  # noqa: F401  (a test dependency: the gallery must be drawn here)

    out = tmp_path / "gallery"
    assert cli.main(["demo", "--epochs", "2", "--points", "100", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"index.html"} | {name for name, _, _ in demo.PICTURES}
    for name in names - {"index.html"}:
        assert (out / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    captured = capsys.readouterr()
    assert "gallery:" in captured.out
    # The summary: a row per experiment (the line race, then each picture), then the total.
    table = captured.out.split("\nexperiment")[-1].splitlines()
    # A row's first line ends with its time; wrapped lines do not.
    rows = [line.split(":")[0] for line in table if re.search(r"\d\.\d\ds$", line)]
    assert rows[:-1] == ["line y = m x + c"] + [name for name, _, _ in demo.PICTURES]
    assert rows[-1].startswith("total")
    assert re.search(r"demo finished in \d+\.\d\d s", captured.out)
    # The progress bar (stderr, one line per update when not a terminal) ends full.
    bars = [line for line in captured.err.splitlines() if line.startswith("[")]
    total = len(demo.PICTURES) + 1
    assert len(bars) == total + 1
    assert bars[0].startswith("[" + "-" * 30 + f"] 0/{total}")
    assert bars[-1].startswith("[" + "#" * 30 + f"] {total}/{total}  done")


def test_demo_results_state_what_the_pictures_show(tmp_path):
    import matplotlib  # noqa: F401

    experiments = demo.main(epochs=2, n=100, out_dir=str(tmp_path), out=lambda *a: None,
                            stream=open(os.devnull, "w"))
    results = {e.name.split(":")[0]: e.result for e in experiments}
    # Plain Newton from 10 ends on the maximum of x cos(0.15 pi x) near 27.8.
    plain = re.search(r"plain Newton ends at x = ([\d.]+)", results["newton.png"])
    assert 27.0 < float(plain.group(1)) < 28.5
    # x cos(pi x): the local minimum near -0.27, the global one near 1.09.
    ends = re.findall(r"ends at x = (-?[\d.]+)", results["local_minimum.png"])
    assert -0.3 < float(ends[0]) < -0.25 and 1.05 < float(ends[1]) < 1.12
    assert "from (1, 0) at (0.000133, 0)" in results["saddle.png"]
    assert all(e.seconds > 0 for e in experiments)


def test_demo_summary_wraps_long_results():
    rows = [demo.Experiment("short", "word " * 40, 1.5), demo.Experiment("b", "ok", 0.25)]
    text = demo.summary(rows, 1.75, width=80).splitlines()
    assert text[0].split() == ["experiment", "result", "time"]
    assert text[2].startswith("short") and text[2].endswith("1.50s")
    assert all(len(line) <= 80 for line in text)
    assert text[-2].startswith("b") and text[-2].endswith("0.25s")
    assert text[-1].startswith("total") and text[-1].endswith("1.75s")


def test_demo_no_plots_writes_nothing(tmp_path):
    assert cli.main(["demo", "--epochs", "1", "--points", "50", "--no-plots",
                     "--out", str(tmp_path / "g")]) == 0
    assert not (tmp_path / "g").exists()
