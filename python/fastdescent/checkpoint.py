"""Saving and loading an optimizer's state to a file, atomically.

A checkpoint is an ``.npz`` archive (NumPy's zip of ``.npy`` files, readable without
pickle) holding the state arrays and one JSON entry with the rest of the state dict. It is
written to a temporary file in the same directory, flushed to disk, then renamed over the
destination: a crash mid-write leaves the previous checkpoint in place, whole.

Version 2 lists every array entry in the JSON with the CRC-32 of its bytes: zip checks each
entry it finds, but not that every entry is there, so a damaged directory could otherwise
drop a state array (which would then restart from zero). Version 1 files (no list) still load.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import struct
import zipfile
import zlib
from typing import Any

import numpy as np

from .optim.base import Optimizer

FORMAT = "fastdescent-checkpoint"
VERSION = 2
#: the versions :func:`load` reads (1: without the list of entries and their checksums)
READABLE_VERSIONS = (1, 2)
_META = "meta.json"
# What reading a damaged archive raises (zipfile and numpy report damage in many ways;
# NotImplementedError, for a garbled compression method, is a RuntimeError).
_DAMAGED = (zipfile.BadZipFile, zlib.error, struct.error, KeyError, EOFError, ValueError,
            OSError, RuntimeError)
_SCHEDULE = {"__schedule__": "a callable lr is not saved: the optimizer's own is kept"}


def _encode_group(group: dict[str, Any]) -> dict[str, Any]:
    return {k: (_SCHEDULE if callable(v) else (list(v) if isinstance(v, tuple) else v))
            for k, v in group.items()}


def save(path: str | os.PathLike, optimizer: Optimizer) -> None:
    """Write ``optimizer.state_dict()`` to ``path`` atomically.

    A schedule given as ``lr`` is not written (code is not data); :func:`load` keeps the
    schedule of the optimizer it loads into.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastdescent optimizer, "
                        f"got {type(optimizer).__name__}")
    state_dict = optimizer.state_dict()
    arrays, scalars = split_state(state_dict["state"])
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "optimizer": type(optimizer).__name__,
        "step_count": state_dict["step_count"],
        "param_groups": [_encode_group(g) for g in state_dict["param_groups"]],
        "scalars": scalars,
    }
    write_archive(path, meta, arrays)


def _decode_groups(saved_groups: list, current_groups) -> list:
    """The inverse of :func:`_encode_group` over a list of groups: a saved schedule is
    replaced by the current group's own, betas become a tuple again. When the counts differ
    the saved groups are returned as they are, for ``load_state_dict`` to report."""
    if len(saved_groups) != len(current_groups):
        return saved_groups
    groups = []
    for saved, current in zip(saved_groups, current_groups):
        group = dict(saved)
        for key, value in saved.items():
            if value == _SCHEDULE:
                group[key] = current[key]
            elif key == "betas" and isinstance(value, list):
                group[key] = tuple(value)
        groups.append(group)
    return groups


def split_state(state: dict[int, dict[str, Any]]
                ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """A state dict's ``state`` as the archive stores it: arrays named
    ``state/<index>/<key>``, and the other values (step counts) by index for the JSON."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state.items():
        for key, value in entries.items():
            if isinstance(value, np.ndarray):
                arrays[f"state/{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return arrays, scalars


def write_archive(path: str | os.PathLike, meta: dict[str, Any],
                  arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (as JSON) and ``arrays`` (``name -> array``, each stored as
    ``name.npy``) to the archive ``path`` atomically: a temporary file in the same
    directory, flushed to disk, then renamed over ``path``. The JSON gains ``entries``:
    the CRC-32 of every array entry, which :func:`read_archive` checks."""
    stored = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        stored[f"{name}.npy"] = buffer.getvalue()
    meta = {**meta, "entries": {name: zlib.crc32(data) for name, data in stored.items()}}
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # Created as open() creates files (mode 0o666 less the umask), not 0o600 as mkstemp does:
    # the checkpoint is renamed into place and keeps this mode.
    tmp = os.path.join(directory, f".fastdescent-{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
                archive.writestr(_META, json.dumps(meta))
                for name, data in stored.items():
                    archive.writestr(name, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _check_entries(path: str, listed, found: dict[str, bytes]) -> None:
    """The archive holds exactly the entries its meta.json lists, with their CRC-32s."""
    if not (isinstance(listed, dict) and all(isinstance(v, int) for v in listed.values())):
        raise ValueError(f"{path} is not a readable fastdescent checkpoint: "
                         "malformed list of entries in its meta.json")
    for name in sorted(listed.keys() - found.keys()):
        raise ValueError(f"{path} is damaged: its entry {name!r} is missing")
    for name in sorted(found.keys() - listed.keys()):
        raise ValueError(f"{path} is damaged: it holds an unlisted entry {name!r}")
    for name, data in found.items():
        if zlib.crc32(data) != listed[name]:
            raise ValueError(f"{path} is damaged: its entry {name!r} fails its checksum")


def read_archive(path: str | os.PathLike,
                 with_arrays: bool = True) -> tuple[Any, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of an archive written by :func:`write_archive` (array names
    keep their ``.npy`` suffix; none are read unless ``with_arrays``). A damaged file, or
    one whose entries differ from those its JSON lists, raises ValueError naming it."""
    path = os.fspath(path)
    with open(path, "rb") as file:  # a missing file raises FileNotFoundError, as open() does
        try:
            with zipfile.ZipFile(file) as archive:
                meta = json.loads(archive.read(_META))
                # read() checks each entry against the CRC-32 in the zip directory
                found = {name: archive.read(name) for name in archive.namelist()
                         if name != _META} if with_arrays else {}
        except _DAMAGED as error:
            raise ValueError(f"{path} is not a readable fastdescent checkpoint: "
                             f"{type(error).__name__}: {error}") from None
    if isinstance(meta, dict) and "entries" in meta and with_arrays:
        _check_entries(path, meta["entries"], found)
    arrays = {}
    for name, data in found.items():
        try:
            arrays[name] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except _DAMAGED as error:
            raise ValueError(f"{path} is not a readable fastdescent checkpoint: {name}: "
                             f"{type(error).__name__}: {error}") from None
    return meta, arrays


def load(path: str | os.PathLike, optimizer: Optimizer) -> None:
    """Load a checkpoint written by :func:`save` into ``optimizer`` (same kind, same param
    shapes and dtypes). The file is checked whole before the optimizer changes."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a fastdescent optimizer, "
                        f"got {type(optimizer).__name__}")
    path = os.fspath(path)
    meta, arrays = read_archive(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fastdescent checkpoint")
    version = meta.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise ValueError(f"{path} is a version {version} checkpoint; this fastdescent reads "
                         f"versions {', '.join(map(str, READABLE_VERSIONS))}")
    if version >= 2 and "entries" not in meta:  # read_archive checked them where listed
        raise ValueError(f"{path} is not a readable fastdescent checkpoint: "
                         "malformed list of entries in its meta.json")
    if meta.get("optimizer") != type(optimizer).__name__:
        raise ValueError(f"{path} holds the state of a {meta.get('optimizer')}, "
                         f"not of a {type(optimizer).__name__}")
    saved_groups, scalars = meta.get("param_groups"), meta.get("scalars", {})
    if not (isinstance(saved_groups, list) and all(isinstance(g, dict) for g in saved_groups)
            and isinstance(scalars, dict)
            and all(isinstance(e, dict) for e in scalars.values())):
        raise ValueError(f"{path} is not a readable fastdescent checkpoint: "
                         "malformed param_groups or scalars in its meta.json")
    state: dict[int, dict[str, Any]] = {}
    try:
        for index, entries in scalars.items():
            state.setdefault(int(index), {}).update(entries)
        for name, array in arrays.items():
            parts = name[:-len(".npy")].split("/") if name.endswith(".npy") else []
            if len(parts) != 3 or parts[0] != "state":
                raise ValueError(f"unexpected entry {name!r}")
            state.setdefault(int(parts[1]), {})[parts[2]] = array
    except ValueError as error:
        raise ValueError(f"{path} is not a readable fastdescent checkpoint: {error}") from None
    groups = _decode_groups(saved_groups, optimizer.param_groups)
    optimizer.load_state_dict({"state": state, "param_groups": groups,
                               "step_count": meta.get("step_count", 0)})
