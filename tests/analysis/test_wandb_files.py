"""multirun_analysis.wandb_files / wandb_mode against real files of a real offline wandb run.

One subprocess (module fixture) runs ``wandb.init(mode="offline")`` twice, logs rows and
writes what it logged to ``expected.json``; the tests read the ``.wandb`` files back. No
network: offline mode, a scratch HOME/config dir, no API key, error reporting off.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from igb.logging.wandb_mode import find_credentials, resolve_mode
from multirun_analysis.wandb_files import (
    BLOCK_SIZE,
    find_run_dirs,
    flatten,
    history_frame,
    iter_records,
    read_run,
)

WRITER = r"""
import json, sys
import wandb
out = sys.argv[1]
quiet = dict(console="off", x_disable_stats=True, x_disable_meta=True,
             x_disable_machine_info=True, save_code=False)

# run 1: the igb layout, default (JSON) value encoding, rows big enough to span blocks
run = wandb.init(mode="offline", dir=out, project="p", group="g", job_type="cnn-batch-post",
                 tags=["igb", "batch-post"], settings=wandb.Settings(**quiet),
                 config={"lr": 0.1, "model": {"name": "cnn", "depth": 3}, "seeds": [0, 1]})
run.define_metric("trainer/global_step")
run.define_metric("igb/*", step_metric="trainer/global_step")
rows = []
for i in range(50):
    row = {f"igb/train/f/{c}": (i * 10 + c) / 7 for c in range(10)}
    row.update({"trainer/global_step": i * 8, "epoch": i // 10, "igb/train/argmax": i % 10})
    if i % 7 == 3:  # ~40 KB: one record over several chunks and two blocks
        row["igb/blob"] = "".join(chr(97 + (i + k) % 26) for k in range(40_000))
        row["igb/list"] = list(range(i, i + 500))
    if i == 5:
        row["igb/nan"], row["igb/inf"], row["igb/none"] = float("nan"), float("inf"), None
        row["nest"] = {"a": 1, "b": {"c": 2.5}}
    run.log(row)
    rows.append(row)
run.config.update({"late": "x"})
run.summary["best"] = 42
run.finish()

# run 2: typed history values too, and a non-zero exit code
run2 = wandb.init(mode="offline", dir=out, project="p", group="g2", job_type="other",
                  settings=wandb.Settings(x_history_value_encoding="json,typed", **quiet))
rows2 = [{"f": 1.0, "i": 3, "s": "hi", "b": True, "n": None, "l": [1, 2]}, {"f": 2.5}]
for row in rows2:
    run2.log(row)
run2.finish(exit_code=3)
with open(f"{out}/expected.json", "w") as f:
    json.dump({"rows": rows, "rows2": rows2, "ids": [run.id, run2.id]}, f)
"""


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "NETRC"}
    env.update(
        HOME=str(home),
        WANDB_CONFIG_DIR=str(home / "wandb-config"),
        WANDB_CACHE_DIR=str(home / "wandb-cache"),
        WANDB_DATA_DIR=str(home / "wandb-data"),
        WANDB_SILENT="true",
        WANDB_ERROR_REPORTING="false",
        WANDB_DISABLE_GIT="true",
        WANDB_MODE="offline",
    )
    return env


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("wandb_runs")
    home = tmp_path_factory.mktemp("home")
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(out)],
        env=_clean_env(home),
        cwd=out,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = json.loads((out / "expected.json").read_text())
    dirs = {d.name.rsplit("-", 1)[-1]: d for d in find_run_dirs(out)}
    return {"root": out, "dirs": dirs, **expected}


def _same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN, recursively through dicts and lists."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_find_run_dirs(written):
    root = written["root"]
    dirs = find_run_dirs(root)
    # sorted by path: by start time to the second, then by id (two runs can share a second)
    assert dirs == sorted(dirs)
    assert sorted(d.name.rsplit("-", 1)[-1] for d in dirs) == sorted(written["ids"])
    assert all(d.name.startswith("offline-run-") and d.is_dir() for d in dirs)
    assert (root / "wandb" / "latest-run").is_symlink()  # present but not listed
    assert find_run_dirs(dirs[0]) == [dirs[0]]
    assert find_run_dirs(root / "nope") == []


def test_read_run_roundtrip(written):
    run_dir = written["dirs"][written["ids"][0]]
    run = read_run(run_dir)
    assert run.path.parent == run_dir and run.path.suffix == ".wandb"
    assert run.path.stat().st_size > 2 * BLOCK_SIZE  # block framing exercised
    assert (run.run_id, run.project, run.group, run.job_type) == (
        written["ids"][0],
        "p",
        "g",
        "cnn-batch-post",
    )
    assert run.tags == ["igb", "batch-post"]
    assert run.config == {
        "lr": 0.1,
        "model": {"name": "cnn", "depth": 3},
        "seeds": [0, 1],
        "late": "x",
    }
    assert run.exit_code == 0 and run.finished and run.complete
    assert run.end_offset == run.path.stat().st_size
    assert run.wandb_version and run.start_time

    logged = written["rows"]
    assert len(run.history) == len(logged) == 50
    for i, (row, want) in enumerate(zip(run.history, logged, strict=True)):
        assert row["_step"] == i
        assert {"_runtime", "_timestamp"} <= row.keys()
        got = {k: v for k, v in row.items() if not k.startswith("_")}
        assert _same(got, want), i
    assert math.isinf(run.history[5]["igb/inf"]) and run.history[5]["igb/none"] is None
    assert run.history[5]["nest"] == {"a": 1, "b": {"c": 2.5}}

    assert run.summary["best"] == 42
    assert run.summary["_step"] == 49
    assert run.summary["igb/train/f/3"] == logged[-1]["igb/train/f/3"]
    assert "_wandb" not in run.summary and "_wandb" not in run.config

    by_name = {m["name"]: m for m in run.metrics}
    igb = by_name["igb/*"]
    assert igb["glob_name"] == "igb/*" and igb["step_metric"] == "trainer/global_step"
    assert "trainer/global_step" in by_name


def test_typed_values_and_exit_code(written):
    run = read_run(written["dirs"][written["ids"][1]])
    assert (run.group, run.job_type, run.tags, run.exit_code) == ("g2", "other", [], 3)
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in run.history]
    assert rows == written["rows2"]
    assert isinstance(run.history[0]["f"], float)  # the typed value keeps 1.0 a float
    assert isinstance(run.history[0]["i"], int)


def test_history_frame(written):
    run = read_run(written["dirs"][written["ids"][0]])
    df = history_frame(run)
    assert len(df) == 50
    assert {"_step", "trainer/global_step", "epoch", "igb/train/f/0", "nest.b.c"} <= set(df)
    assert df["trainer/global_step"].tolist() == [r["trainer/global_step"] for r in run.history]
    assert df["nest.b.c"].iloc[5] == 2.5 and math.isnan(df["nest.b.c"].iloc[0])
    assert history_frame(run.path).shape == df.shape
    assert flatten({"a": {"b": 1}, "c": {}}) == {"a.b": 1, "c": {}}


def test_iter_records(written):
    records = list(iter_records(written["dirs"][written["ids"][0]]))
    kinds = [r.WhichOneof("record_type") for r in records]
    assert kinds[0] == "header" and kinds.count("history") == 50 and "exit" in kinds
    # records larger than a block can only be stored as first/middle/last chunks
    assert sum(r.ByteSize() > BLOCK_SIZE for r in records) >= 7


def test_corrupt_byte_raises(written, tmp_path):
    src = read_run(written["dirs"][written["ids"][0]]).path
    data = bytearray(src.read_bytes())
    offset = data.index(b"abcdefghijklmnopqrstuvwxyz", BLOCK_SIZE // 2)  # inside a blob row
    data[offset] ^= 0x01
    bad = tmp_path / src.name
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch") as err:
        read_run(bad)
    assert str(bad) in str(err.value) and "offset" in str(err.value)

    bad.write_bytes(b"LEVELDB" + bytes(data[7:]))
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        read_run(bad)


def test_truncated_file_reads_complete_prefix(written, tmp_path):
    src = read_run(written["dirs"][written["ids"][0]]).path
    full = read_run(src)
    data = src.read_bytes()
    cut_file = tmp_path / src.name
    sizes = sorted(
        {0, 3, 7, 8, 100, BLOCK_SIZE - 3, BLOCK_SIZE, BLOCK_SIZE + 9, len(data) - 1}
        | set(range(7, len(data), 4099))
    )
    seen_partial = 0
    for size in sizes:
        cut_file.write_bytes(data[:size])
        run = read_run(cut_file)  # a run still being written: no error
        n = len(run.history)
        assert _same(run.history, full.history[:n]), size
        assert run.end_offset <= size and run.exit_code is None
        if not run.complete:
            seen_partial += 1
            with pytest.raises(ValueError, match="ends inside a record"):
                read_run(cut_file, strict=True)
    assert seen_partial > len(sizes) // 2
    cut_file.write_bytes(data[: len(data) // 2])
    assert 0 < len(read_run(cut_file).history) < 50


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_run(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_run(tmp_path / "run-x.wandb")


# --------------------------------------------------------------------------- resolve_mode


@pytest.fixture
def no_creds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A scratch HOME and cwd with no wandb env vars, netrc or settings."""
    for var in list(os.environ):
        if var.startswith("WANDB_") or var == "NETRC":
            monkeypatch.delenv(var)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


def test_mode_no_credentials_is_offline(no_creds):
    assert find_credentials() is None
    mode, message = resolve_mode("auto", save_dir="/runs/job/wandb")
    assert mode == "offline"
    assert message == (
        "W&B: no credentials found, logging offline to /runs/job/wandb; "
        "upload later with `wandb sync /runs/job/wandb/offline-run-*`"
    )
    assert resolve_mode("online")[0] == "offline"  # never let wandb prompt for a key


def test_mode_api_key_is_online(no_creds, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode() == ("online", None)
    monkeypatch.setenv("WANDB_MODE", "offline")
    mode, message = resolve_mode()
    assert mode == "offline" and "WANDB_MODE=offline" in message and "wandb sync" in message
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode()[0] == "disabled"
    assert resolve_mode("online")[0] == "disabled"


def test_mode_disabled(no_creds, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode()[0] == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    assert resolve_mode("disabled") == ("disabled", None)
    assert resolve_mode("offline")[0] == "offline"
    with pytest.raises(ValueError):
        resolve_mode("sometimes")


def test_mode_netrc_and_settings_files(no_creds, monkeypatch):
    netrc = no_creds / ".netrc"
    netrc.write_text("machine example.org login user password abc\n")
    netrc.chmod(0o600)
    assert resolve_mode()[0] == "offline"  # a key for another host does not count
    netrc.write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    assert find_credentials() == str(netrc)
    assert resolve_mode()[0] == "online"  # wandb accepts it for the default Forge server
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.mycorp.example")
    assert resolve_mode()[0] == "offline"
    netrc.unlink()

    settings = no_creds / ".config" / "wandb" / "settings"
    settings.parent.mkdir(parents=True)
    settings.write_text("[default]\napi_key = " + "k" * 40 + "\n")
    assert resolve_mode()[0] == "online"
    settings.write_text("[default]\napi_key = " + "k" * 40 + "\nmode = offline\n")
    assert resolve_mode()[0] == "offline"  # `wandb offline` is honoured


def test_wandb_files_copy_independent(written, tmp_path):
    """A run folder copied elsewhere (e.g. from a cluster) reads the same."""
    src = written["dirs"][written["ids"][0]]
    dst = tmp_path / "copy" / src.name
    shutil.copytree(src, dst)
    assert find_run_dirs(tmp_path) == [dst]
    assert _same(read_run(dst).history, read_run(src).history)
