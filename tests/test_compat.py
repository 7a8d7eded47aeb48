"""igb.compat: every private Hydra / Lightning / W&B API igb relies on is still there.

A failure names the API and who uses it: an upgrade broke it, and igb.compat (and the
user it names) must be adapted before anything else runs on the new version.
"""

from __future__ import annotations

import dataclasses
import inspect
from importlib import metadata

import pytest

from igb import compat
from igb.logging import wandb_mode


@pytest.mark.parametrize("api", compat.PRIVATE_APIS, ids=lambda api: api.name)
def test_private_api_is_present(api: compat.PrivateAPI) -> None:
    problems = compat.broken_apis([api])
    assert not problems, (
        f"{problems[0]}; checked against {api.package} {compat.CHECKED_VERSIONS[api.package]}, "
        f"installed {metadata.version(api.package)}"
    )


def test_a_missing_or_reshaped_api_is_reported_by_name() -> None:
    gone = dataclasses.replace(compat.PRIVATE_APIS[0], attribute="BasicSweeper.no_such_method")
    ddp = next(a for a in compat.PRIVATE_APIS if a.attribute == "_hydra_subprocess_cmd")
    reshaped = dataclasses.replace(ddp, parameters=("rank", "world_size"))
    problems = compat.broken_apis([gone, reshaped])
    assert len(problems) == 2
    assert "BasicSweeper.no_such_method" in problems[0] and "gone" in problems[0]
    assert "_hydra_subprocess_cmd" in problems[1] and "rank" in problems[1]


def test_a_known_run_mode_spares_hydra_main_a_composition() -> None:
    """Inside, Hydra's get_mode answers what the pre-flight read (no composition); after,
    and with MODE_UNREAD, it is Hydra's own again."""
    from hydra._internal.hydra import Hydra
    from hydra.types import RunMode

    original = Hydra.get_mode
    with compat.known_run_mode(RunMode.MULTIRUN):
        assert Hydra.get_mode(object(), "train", ["model=mlp"]) is RunMode.MULTIRUN
    assert Hydra.get_mode is original
    with compat.known_run_mode(compat.MODE_UNREAD):
        assert Hydra.get_mode is original


def test_every_checked_package_is_listed_with_a_version() -> None:
    assert {api.package for api in compat.PRIVATE_APIS} == set(compat.CHECKED_VERSIONS)


def test_basic_sweeper_expands_a_grid() -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(["a=1,2", "b=x,y", "c=3"])
    jobs = compat.BasicSweeper.split_arguments(parsed, None)[0]
    assert sorted(map(sorted, jobs)) == sorted(
        [sorted([f"a={a}", f"b={b}", "c=3"]) for a in (1, 2) for b in ("x", "y")]
    )


def test_hydra_args_parser_knows_multirun_and_overrides() -> None:
    args, _ = compat.get_args_parser().parse_known_args(["-m", "x=1", "y=2"])
    assert args.multirun and args.overrides == ["x=1", "y=2"]


def test_ddp_subprocess_command_is_replaced_and_used() -> None:
    from lightning.pytorch.strategies.launchers import subprocess_script

    before = subprocess_script._hydra_subprocess_cmd

    def build(local_rank: int) -> tuple[list[str], str]:
        return [f"rank{local_rank}"], "."

    try:
        compat.set_ddp_subprocess_command(build)
        # the launcher looks the function up by this name when it starts rank r
        assert "_hydra_subprocess_cmd(" in inspect.getsource(subprocess_script)
        assert subprocess_script._hydra_subprocess_cmd(1) == (["rank1"], ".")
    finally:
        subprocess_script._hydra_subprocess_cmd = before


def test_wandb_credentials_are_looked_up_where_wandb_mode_mirrors() -> None:
    """wandb_mode mirrors wandb's lookup without importing it: the env vars, the netrc
    and the settings file it reads, and the default server, must still be wandb's."""
    from wandb import env
    from wandb.sdk.lib.wbauth import authenticate
    from wandb.sdk.wandb_settings import Settings

    source = inspect.getsource(authenticate)
    assert (env.API_KEY, env.IDENTITY_TOKEN_FILE) == ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE")
    assert "env.API_KEY" in source and "env.IDENTITY_TOKEN_FILE" in source
    assert "netrc" in source.lower()
    assert Settings().base_url.rstrip("/") == wandb_mode.DEFAULT_BASE_URL


def test_hydra_messages_are_read_from_errors_hydra_really_raises() -> None:
    """The regexes over Hydra's wording, against the errors Hydra 1.3 raises for an unknown
    option and an unknown key (a wording change fails here, not as a traceback at a user)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from igb.launch.conf_dir import find_conf_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(find_conf_dir()), version_base="1.3"):
        with pytest.raises(Exception) as missing:
            compose("train", ["norm=sideways"])
        with pytest.raises(Exception) as unknown:
            compose("train", ["model.no_such_key=1"])
    GlobalHydra.instance().clear()
    assert compat.hydra_missing_option(str(missing.value)) == ("norm", "sideways")
    assert compat.hydra_unknown_key(str(unknown.value)) == "model.no_such_key"
    assert compat.hydra_missing_option("something else") is None
    assert compat.hydra_unknown_key("something else") is None


def test_private_attribute_helpers_on_real_objects() -> None:
    import torch
    from lightning.pytorch.callbacks import RichProgressBar
    from lightning.pytorch.loggers import WandbLogger
    from timm.layers import BatchNormAct2d

    logger = WandbLogger(offline=True, anonymous=None)
    assert "anonymous" in logger._wandb_init
    compat.drop_unset_wandb_init_key(logger)
    assert "anonymous" not in logger._wandb_init
    assert compat.logger_run(logger) is None  # nothing started, and nothing starts
    assert logger._experiment is None
    assert compat.progress_stopped(RichProgressBar()) is False
    base = compat.batch_norm_base()
    for norm in (torch.nn.BatchNorm1d(3), torch.nn.BatchNorm2d(3), BatchNormAct2d(3)):
        assert isinstance(norm, base)
    assert not isinstance(torch.nn.LayerNorm(3), base)
    assert hasattr(compat.wandb_record_module(), "Record")


class _RunsCode:
    """What a hostile checkpoint holds: unpickling it would call ``marker.write_text``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path(self.marker).write_text, ("code ran",))


def test_checkpoints_are_read_without_running_code(tmp_path) -> None:
    """A .ckpt in a job folder is data: ``load_checkpoint`` (and so the integrity check)
    refuses a pickled callable; model, optimizer and scheduler states load."""
    import torch

    from igb.jobs.integrity import checkpoint_meta

    marker = tmp_path / "marker"
    hostile = tmp_path / "checkpoints" / "last.ckpt"
    hostile.parent.mkdir()
    torch.save({"state_dict": {}, "igb_config_hash": "x", "payload": _RunsCode(str(marker))},
               hostile)  # fmt: skip
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        compat.load_checkpoint(hostile)
    assert checkpoint_meta(hostile) == {}
    assert not marker.exists()

    fine = tmp_path / "fine.ckpt"
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 4)
    torch.save({"state_dict": model.state_dict(), "optimizer_states": [opt.state_dict()],
                "lr_schedulers": [sched.state_dict()], "loops": {"epoch": 1}}, fine)  # fmt: skip
    loaded = compat.load_checkpoint(fine, mmap=True)
    assert loaded["state_dict"]["weight"].equal(model.weight.detach())
