"""fd.save / fd.load: an optimizer's state in a file, written atomically.

A checkpoint round-trips exactly (a continued run is bit-identical), a crash mid-write
leaves the previous checkpoint whole and no debris, and a file that is not a checkpoint of
this optimizer raises ValueError without changing the optimizer.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import zipfile

import numpy as np
import pytest

import fastdescent as fd
from conftest import assert_same, assert_unchanged, snapshot

CONFIGS = {
    "SGD": (fd.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "Adagrad": (fd.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    "RMSprop": (fd.RMSprop, dict(lr=0.01, momentum=0.9, centered=True)),
    "Adam": (fd.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    "AdamW": (fd.AdamW, dict(lr=0.01, amsgrad=True, betas=(0.8, 0.99))),
}
SHAPES = [(5,), (2, 3), (4,)]


@pytest.fixture(params=list(CONFIGS))
def config(request):
    return request.param


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def make_grads(params, t):
    rng = np.random.default_rng(1000 + t)
    grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    if t == 0 and len(grads) > 2:
        grads[2] = None  # params[2] starts a step late: its state lags
    return grads


def build(config, backend, params, **options):
    cls, defaults = CONFIGS[config]
    defaults = {**defaults, **options}
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.5 * defaults["lr"]}]
    return cls(groups, backend=backend, **defaults)


def run(opt, start, stop):
    for t in range(start, stop):
        opt.step(make_grads(opt.params, t))
    return opt


@pytest.fixture
def saved(config, backend, tmp_path):
    """An optimizer after three steps and its checkpoint."""
    opt = run(build(config, backend, make_params()), 0, 3)
    path = tmp_path / "ckpt.npz"
    fd.save(path, opt)
    return opt, path


# ---------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_round_trip_is_exact_and_continuation_bit_identical(config, backend, dtype, tmp_path):
    uninterrupted = run(build(config, backend, make_params(dtype)), 0, 6)
    first = run(build(config, backend, make_params(dtype)), 0, 3)
    path = tmp_path / "ckpt.npz"
    fd.save(path, first)

    second = build(config, backend, [p.copy() for p in first.params], lr=1.0)
    fd.load(path, second)
    assert_same(second, first)
    run(second, 3, 6)
    assert_same(second, uninterrupted)


def test_a_fresh_optimizer_loads_into_the_same_state_as_load_state_dict(saved):
    opt, path = saved
    via_file = build(type(opt).__name__, opt.backend, [p.copy() for p in opt.params])
    fd.load(path, via_file)
    via_dict = build(type(opt).__name__, opt.backend, [p.copy() for p in opt.params])
    via_dict.load_state_dict(opt.state_dict())
    assert_same(via_file, via_dict)


def test_checkpoint_is_an_archive_of_npy_files_and_json(saved):
    """Readable without pickle: one JSON entry and one .npy per state array."""
    opt, path = saved
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        meta = json.loads(archive.read("meta.json"))
    arrays = {f"state/{i}/{k}.npy" for i, s in opt.state.items()
              for k, v in s.items() if isinstance(v, np.ndarray)}
    assert names == arrays | {"meta.json"}
    assert meta["optimizer"] == type(opt).__name__ and meta["step_count"] == 3


@pytest.mark.parametrize("as_path", [str, pathlib.Path, pathlib.PurePath],
                         ids=["str", "Path", "PurePath"])
def test_paths_of_every_kind_are_accepted(backend, tmp_path, as_path):
    opt = run(fd.Adam(make_params(), backend=backend), 0, 2)
    target = fd.Adam([p.copy() for p in opt.params], backend=backend)
    path = as_path(str(tmp_path / "ckpt.npz"))
    fd.save(path, opt)
    fd.load(path, target)
    assert_same(target, opt)


def test_saving_again_replaces_the_checkpoint(saved):
    opt, path = saved
    run(opt, 3, 5)
    fd.save(path, opt)
    target = build(type(opt).__name__, opt.backend, [p.copy() for p in opt.params])
    fd.load(path, target)
    assert target.step_count == 5
    assert_same(target, opt)
    assert os.listdir(path.parent) == [path.name]


# ---------------------------------------------------------------------------- atomic writes


class Crash(Exception):
    pass


def _crash_on_replace(monkeypatch):
    def replace(src, dst):
        raise Crash("disk full at rename")
    monkeypatch.setattr(os, "replace", replace)


def _crash_in_array_writing(monkeypatch):
    real = np.lib.format.write_array
    calls = []

    def write_array(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second array: the archive is half written
            fp.write(b"\x93NUMPY partial")
            raise Crash("killed while writing an array")
        return real(fp, array, *args, **kwargs)
    monkeypatch.setattr(np.lib.format, "write_array", write_array)


def _crash_in_zip_writing(monkeypatch):
    real = zipfile.ZipFile.writestr
    calls = []

    def writestr(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Crash("killed mid archive")
        return real(self, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)


def _interrupt_at_fsync(monkeypatch):
    def fsync(fd_):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", fsync)


CRASHES = {"os.replace": (_crash_on_replace, Crash),
           "writing an array": (_crash_in_array_writing, Crash),
           "writing the zip": (_crash_in_zip_writing, Crash),
           "Ctrl-C at fsync": (_interrupt_at_fsync, KeyboardInterrupt)}


@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_crash_mid_write_keeps_the_previous_checkpoint(backend, tmp_path, monkeypatch, crash):
    inject, exc = CRASHES[crash]
    opt = run(fd.Adam(make_params(), amsgrad=True, backend=backend), 0, 2)
    path = tmp_path / "ckpt.npz"
    fd.save(path, opt)
    old_bytes = path.read_bytes()
    expected = fd.Adam([p.copy() for p in opt.params], amsgrad=True, backend=backend)
    fd.load(path, expected)

    run(opt, 2, 4)
    with monkeypatch.context() as patch:
        inject(patch)
        with pytest.raises(exc):
            fd.save(path, opt)

    assert os.listdir(tmp_path) == ["ckpt.npz"], "no temporary file is left behind"
    assert path.read_bytes() == old_bytes
    target = fd.Adam([p.copy() for p in expected.params], amsgrad=True, backend=backend)
    fd.load(path, target)
    assert target.step_count == 2
    assert_same(target, expected)


@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_crash_on_the_first_save_leaves_no_file(backend, tmp_path, monkeypatch, crash):
    inject, exc = CRASHES[crash]
    opt = run(fd.SGD(make_params(), momentum=0.9, backend=backend), 0, 2)
    with monkeypatch.context() as patch:
        inject(patch)
        with pytest.raises(exc):
            fd.save(tmp_path / "ckpt.npz", opt)
    assert os.listdir(tmp_path) == []


def test_unserializable_group_option_fails_cleanly(backend, tmp_path):
    """An extra group key that JSON cannot hold fails the save before the rename."""
    opt = fd.SGD([{"params": [np.zeros(3)], "tag": object()}], backend=backend)
    path = tmp_path / "ckpt.npz"
    with pytest.raises(TypeError):
        fd.save(path, opt)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------- refusals


def other_class(name):
    return "SGD" if name != "SGD" else "Adam"


def test_loading_into_another_optimizer_class_names_both(saved):
    opt, path = saved
    name, other = type(opt).__name__, other_class(type(opt).__name__)
    target = run(build(other, opt.backend, make_params()), 0, 2)
    before = snapshot(target)
    with pytest.raises(ValueError, match=rf"state of a {name}, not of a {other}"):
        fd.load(path, target)
    assert_unchanged(target, before)


def test_adamw_and_adam_checkpoints_are_not_interchangeable(backend, tmp_path):
    adamw = run(fd.AdamW(make_params(), backend=backend), 0, 2)
    fd.save(tmp_path / "w.npz", adamw)
    adam = fd.Adam(make_params(), backend=backend)
    with pytest.raises(ValueError, match="AdamW.*Adam"):
        fd.load(tmp_path / "w.npz", adam)


def test_loading_params_of_other_shapes_changes_nothing(saved):
    opt, path = saved
    params = make_params()
    params[1] = np.zeros((3, 2))
    target = run(build(type(opt).__name__, opt.backend, params), 0, 2)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"state_dict\['state'\]\[1\].*has shape \(2, 3\)"):
        fd.load(path, target)
    assert_unchanged(target, before)


@pytest.fixture
def adam_saved(backend, tmp_path):
    """An Adam (AMSGrad) optimizer after three steps and its checkpoint."""
    opt = run(fd.Adam(make_params(), amsgrad=True, backend=backend), 0, 3)
    path = tmp_path / "ckpt.npz"
    fd.save(path, opt)
    return opt, path


def _target(opt):
    """Another optimizer of the same kind, with state of its own."""
    return run(fd.Adam(make_params(seed=3), amsgrad=True, backend=opt.backend), 0, 2)


@pytest.mark.parametrize("keep", [0, 1, 21, 0.5, 0.9, -1], ids=lambda k: f"keep={k}")
def test_a_truncated_file_raises_value_error_and_changes_nothing(adam_saved, keep):
    opt, path = adam_saved
    data = path.read_bytes()
    cut = keep if isinstance(keep, int) and keep >= 0 else (
        len(data) - 1 if keep == -1 else int(len(data) * keep))
    path.write_bytes(data[:cut])
    target = _target(opt)
    before = snapshot(target)
    with pytest.raises(ValueError, match="is not a readable fastdescent checkpoint"):
        fd.load(path, target)
    assert_unchanged(target, before)


@pytest.mark.parametrize("size", [0, 10, 4096])
def test_random_bytes_raise_value_error_and_change_nothing(adam_saved, size):
    opt, path = adam_saved
    path.write_bytes(np.random.default_rng(size).bytes(size))
    target = _target(opt)
    before = snapshot(target)
    with pytest.raises(ValueError, match="is not a readable fastdescent checkpoint"):
        fd.load(path, target)
    assert_unchanged(target, before)


def test_damaged_bytes_raise_value_error_or_load(tmp_path):
    """Flip one byte at a time (every byte of the zip headers at both ends, and a sample
    of the rest): loading either refuses with ValueError and changes nothing, or succeeds
    (the byte was one zip does not check) — never another exception. Reading the file
    is the same for every backend."""
    opt = run(fd.Adam([np.ones(2), np.ones(3)], backend="numpy"), 0, 1)
    path = tmp_path / "ckpt.npz"
    fd.save(path, opt)
    data = path.read_bytes()
    n = len(data)
    positions = sorted(set(range(0, 80)) | set(range(n - 300, n)) | set(range(80, n, 17)))
    target = fd.Adam([np.ones(2), np.ones(3)], backend="numpy")
    damaged = tmp_path / "damaged.npz"
    refused = 0
    for at in positions:
        flipped = bytearray(data)
        flipped[at] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        before = snapshot(target)
        try:
            fd.load(damaged, target)
        except ValueError:
            refused += 1
            assert_unchanged(target, before)
    assert refused > len(positions) // 2


def test_a_zip_that_is_not_a_checkpoint(adam_saved):
    opt, path = adam_saved
    np.savez(path.with_suffix(".other.npz"), a=np.zeros(3))
    target = _target(opt)
    before = snapshot(target)
    with pytest.raises(ValueError, match="not a readable fastdescent checkpoint"):
        fd.load(path.with_suffix(".other.npz"), target)
    assert_unchanged(target, before)


META_EDITS = {
    "format": (lambda m: m.update(format="something-else"), "is not a fastdescent checkpoint"),
    "version": (lambda m: m.update(version=99), "is a version 99 checkpoint"),
    "no param_groups": (lambda m: m.pop("param_groups"), "malformed param_groups"),
    "param_groups not a list": (lambda m: m.update(param_groups={"lr": 1}),
                                "malformed param_groups"),
    "scalars not a dict": (lambda m: m.update(scalars=[1]), "malformed param_groups or scalars"),
    "scalar index not a number": (lambda m: m.update(scalars={"x": {"step": 1}}),
                                  "not a readable fastdescent checkpoint"),
    "negative step_count": (lambda m: m.update(step_count=-3), "step_count"),
}


@pytest.mark.parametrize("edit", list(META_EDITS))
def test_a_damaged_meta_raises_value_error_and_changes_nothing(backend, tmp_path, edit):
    change, fragment = META_EDITS[edit]
    opt = run(fd.Adam(make_params(), backend=backend), 0, 2)
    path = tmp_path / "ckpt.npz"
    fd.save(path, opt)
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    meta = json.loads(entries["meta.json"])
    change(meta)
    entries["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    target = run(fd.Adam(make_params(seed=4), backend=backend), 0, 1)
    before = snapshot(target)
    with pytest.raises(ValueError, match=fragment):
        fd.load(path, target)
    assert_unchanged(target, before)


def test_a_missing_file_raises_file_not_found(adam_saved, tmp_path):
    opt, _ = adam_saved
    with pytest.raises(FileNotFoundError):
        fd.load(tmp_path / "nowhere.npz", opt)


def test_only_optimizers_are_saved_and_loaded(adam_saved, tmp_path):
    opt, path = adam_saved
    with pytest.raises(TypeError, match="optimizer must be a fastdescent optimizer"):
        fd.save(tmp_path / "x.npz", opt.state_dict())
    with pytest.raises(TypeError, match="optimizer must be a fastdescent optimizer"):
        fd.load(path, opt.state_dict())
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------------------- schedules


def test_a_schedule_is_not_written_and_the_targets_own_is_kept(backend, tmp_path):
    def schedule(t):
        return 0.1 / t

    def other_schedule(t):
        return 0.05 / t

    opt = run(fd.Adam([{"params": [np.ones(3)]}, {"params": [np.ones(2)], "lr": 0.02}],
                      lr=schedule, backend=backend), 0, 2)
    path = tmp_path / "ckpt.npz"
    fd.save(path, opt)
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("meta.json").decode()
    assert "schedule" in raw and "0.02" in raw
    saved_lrs = [g["lr"] for g in json.loads(raw)["param_groups"]]
    assert not isinstance(saved_lrs[0], (int, float)) and saved_lrs[1] == 0.02

    target = fd.Adam([{"params": [np.ones(3)]}, {"params": [np.ones(2)]}],
                     lr=other_schedule, backend=backend)
    fd.load(path, target)
    assert target.param_groups[0]["lr"] is other_schedule
    assert target.param_groups[1]["lr"] == 0.02  # a number is restored
    assert target.step_count == 2

    plain = fd.Adam([{"params": [np.ones(3)]}, {"params": [np.ones(2)]}], lr=0.3,
                    backend=backend)
    fd.load(path, plain)
    assert plain.param_groups[0]["lr"] == 0.3


def test_continuing_with_the_same_schedule_is_bit_identical(backend, tmp_path):
    def schedule(t):
        return 0.1 / (1 + t)

    uninterrupted = run(fd.RMSprop(make_params(), lr=schedule, momentum=0.5,
                                   backend=backend), 0, 5)
    first = run(fd.RMSprop(make_params(), lr=schedule, momentum=0.5, backend=backend), 0, 2)
    fd.save(tmp_path / "ckpt.npz", first)
    second = fd.RMSprop([p.copy() for p in first.params], lr=schedule, momentum=0.5,
                        backend=backend)
    fd.load(tmp_path / "ckpt.npz", second)
    run(second, 2, 5)
    assert_same(second, uninterrupted)


# ---------------------------------------------------------------------------- format versions

DATA = pathlib.Path(__file__).parent / "data"


def _known(shape, k):
    """The values the version-1 fixture was written with: element j of state array k is
    j / 8 + k (float32)."""
    return (np.arange(np.prod(shape), dtype=np.float64).reshape(shape) / 8 + k).astype(
        np.float32)


def _fixture_optimizer(backend):
    params = [np.zeros((2, 3), np.float32), np.zeros(4, np.float32)]
    return fd.Adam([{"params": params[:1]}, {"params": params[1:]}], lr=0.01, amsgrad=True,
                   betas=(0.8, 0.99), backend=backend)


def test_a_version_1_checkpoint_still_loads(backend):
    """tests/data/checkpoint-v1-adam.npz was written by fastdescent 0.1.0's version-1
    writer: fd.save of an AMSGrad Adam (betas (0.8, 0.99), lr 0.01 then 0.005 in group 1)
    over float32 params of shapes (2, 3) and (4,) after load_state_dict of step 7 and
    exp_avg, exp_avg_sq, max_exp_avg_sq = _known(shape, 1), (.., 2), (.., 3)."""
    target = _fixture_optimizer(backend)
    fd.load(DATA / "checkpoint-v1-adam.npz", target)
    assert target.step_count == 7
    assert [g["lr"] for g in target.param_groups] == [0.01, 0.005]
    for i, p in enumerate(target.params):
        state = target.state[i]
        assert state["step"] == 7
        for k, key in enumerate(("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), start=1):
            assert state[key].dtype == np.float32
            assert state[key].tobytes() == _known(p.shape, k).tobytes()
    twin = _fixture_optimizer(backend)
    twin.load_state_dict(target.state_dict())
    grads = [np.full(p.shape, 0.5, np.float32) for p in target.params]
    target.step(grads)
    twin.step(grads)
    assert_same(target, twin)


def test_a_checkpoint_lists_its_entries_with_their_crc32(saved):
    import zlib

    opt, path = saved
    with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read("meta.json"))
        assert meta["version"] == 2
        names = [n for n in archive.namelist() if n != "meta.json"]
        assert meta["entries"] == {n: zlib.crc32(archive.read(n)) for n in names}


def _rewrite(path, change):
    """Rewrite the archive at ``path`` with ``change(entries)`` applied to its
    {name: bytes} (zip computes fresh, valid CRCs: only the listed checksums can tell)."""
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    change(entries)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def _drop_one_array(entries):
    del entries["state/1/exp_avg_sq.npy"]


def _add_an_array(entries):
    entries["state/1/extra.npy"] = entries["state/1/exp_avg_sq.npy"]


def _flip_a_bit_of_data(entries):
    data = bytearray(entries["state/0/exp_avg.npy"])
    data[-1] ^= 1  # the last byte of the last element: still a well-formed .npy
    entries["state/0/exp_avg.npy"] = bytes(data)


def _swap_two_arrays(entries):
    a, b = "state/0/exp_avg.npy", "state/0/exp_avg_sq.npy"
    entries[a], entries[b] = entries[b], entries[a]


def _unlist(entries):
    meta = json.loads(entries["meta.json"])
    meta["entries"] = None
    entries["meta.json"] = json.dumps(meta).encode()


DAMAGE = {"an array missing": (_drop_one_array, "entry 'state/1/exp_avg_sq.npy' is missing"),
          "an unlisted array": (_add_an_array, "unlisted entry 'state/1/extra.npy'"),
          "a flipped bit": (_flip_a_bit_of_data, "'state/0/exp_avg.npy' fails its checksum"),
          "two arrays swapped": (_swap_two_arrays, "fails its checksum"),
          "no list of entries": (_unlist, "malformed list of entries")}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_that_zip_cannot_see_is_refused(adam_saved, damage):
    """A rebuilt archive has valid zip CRCs; the checksums in meta.json still catch it."""
    opt, path = adam_saved
    change, fragment = DAMAGE[damage]
    _rewrite(path, change)
    target = _target(opt)
    before = snapshot(target)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        fd.load(path, target)
    assert_unchanged(target, before)


def test_the_file_mode_is_that_of_open(saved, tmp_path):
    """Not mkstemp's 0o600: a checkpoint is created as any file the user writes."""
    _, path = saved
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert path.stat().st_mode == plain.stat().st_mode
