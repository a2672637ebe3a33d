"""The command line: ``fastdescent info`` and ``fastdescent demo``."""

from __future__ import annotations

import os
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
    fitted = out.split("fitted line")[1].strip().splitlines()
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
    assert {"index.html", "line_fit_modes.png", "quadratic_race.png", "rosenbrock_race.png",
            "local_minimum.png"} <= names
    for name in names - {"index.html"}:
        assert (out / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "gallery:" in capsys.readouterr().out


def test_demo_no_plots_writes_nothing(tmp_path):
    assert cli.main(["demo", "--epochs", "1", "--points", "50", "--no-plots",
                     "--out", str(tmp_path / "g")]) == 0
    assert not (tmp_path / "g").exists()
