"""A throwaway single-node SLURM cluster (munged + slurmctld + slurmd) for tests.

Usage::

    from helpers.slurm_cluster import skip_or_fail_without_slurm, slurm_cluster

    skip_or_fail_without_slurm()  # skip here, but fail when CI is set
    with slurm_cluster(tmp_path) as cluster:
        job_id = cluster.sbatch("--wrap", "hostname")
        assert cluster.wait_for_job(job_id) == "COMPLETED"
        subprocess.run(["squeue"], env=cluster.env)  # env carries SLURM_CONF

or, in a test module / conftest.py, the module-scoped fixture ``slurm``::

    from helpers.slurm_cluster import cluster_fixture  # noqa: F401  (registers fixture `slurm`)

    def test_grid(slurm): ...

Needs root and the ``slurm-wlm`` and ``munge`` binaries, which ``.ci/slurm_up.sh`` installs
(CI runs it before the tests; nothing here installs or writes a system file). Every piece of
state (munge key and socket, slurm.conf, state/spool dirs, PID and log files) lives under
the given temp dir (only the munge socket moves to a short /tmp/igb-munge-* dir if the path
would be too long for a unix socket); nothing in /etc is written (the munge key is per
cluster), and the daemons run in the foreground as children of this
process and are stopped by their PIDs, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRED_BINARIES = (
    "slurmctld",
    "slurmd",
    "sinfo",
    "squeue",
    "sbatch",
    "srun",
    "scontrol",
    "scancel",
    "munged",
    "munge",
    "unmunge",
)
# sbin dirs are not on every PATH (e.g. non-login shells); the daemons live there.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/local/sbin")
TERMINAL_JOB_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
_UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes; keep a margin

# A stand-in for `sacct` (there is no accounting daemon, so the real one only errors out),
# answering from `scontrol show job`: enough for submitit's job-state polling
# (`sacct -o JobID,State,NodeList --parsable2 -j ID ...`). Finished jobs stay visible for
# MinJobAge seconds. Put first on the cluster's PATH when `sacct_shim=True`.
_SACCT_SHIM = """\
import subprocess
import sys

FIELDS = {
    "jobid": None, "jobidraw": "JobId", "jobname": "JobName", "state": "JobState",
    "nodelist": "NodeList", "exitcode": "ExitCode", "elapsed": "RunTime",
    "start": "StartTime", "end": "EndTime", "partition": "Partition", "user": "UserId",
}


def main(argv):
    fields, ids, header = ["JobID", "JobName", "State", "ExitCode"], [], True
    it = iter(argv)
    for arg in it:
        if arg in ("-o", "--format"):
            fields = next(it).split(",")
        elif arg.startswith("--format="):
            fields = arg.split("=", 1)[1].split(",")
        elif arg in ("-j", "--jobs"):
            ids += next(it).split(",")
        elif arg.startswith("--jobs="):
            ids += arg.split("=", 1)[1].split(",")
        elif arg in ("-n", "--noheader"):
            header = False
    names = [f.split("%")[0] for f in fields]
    unknown = [n for n in names if n.lower() not in FIELDS]
    if unknown:
        sys.exit(f"sacct stand-in: unsupported field(s) {unknown}")
    if header:
        print("|".join(names))
    for job in ids or [""]:
        cmd = ["scontrol", "-o", "show", "job"] + ([job] if job else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            rec = dict(t.split("=", 1) for t in line.split() if "=" in t)
            jid, task = rec.get("ArrayJobId"), rec.get("ArrayTaskId")
            if jid and task:
                full = f"{jid}_[{task}]" if any(c in task for c in "-,%") else f"{jid}_{task}"
            else:
                full = rec.get("JobId", "")
            rec["JobState"] = rec.get("JobState", "UNKNOWN")
            row = [full if n.lower() == "jobid" else rec.get(FIELDS[n.lower()], "") for n in names]
            print("|".join(row))


main(sys.argv[1:])
"""


class SlurmUnavailable(RuntimeError):
    """A cluster cannot be started on this machine (see :func:`why_no_slurm`)."""


class SlurmStartError(RuntimeError):
    """The daemons were started but the cluster did not come up."""


# --------------------------------------------------------------------------- helpers


def _search_path() -> str:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join([p for p in parts if p] + [p for p in _EXTRA_PATH if p not in parts])


def which(name: str) -> str | None:
    """``shutil.which`` that also looks in the sbin dirs."""
    return shutil.which(name, path=_search_path())


def _missing_binaries() -> list[str]:
    return [b for b in REQUIRED_BINARIES if which(b) is None]


def _truthy_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def why_no_slurm() -> str | None:
    """Why a local cluster cannot be started here, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return f"a local SLURM cluster needs Linux (this is {sys.platform})"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a local SLURM cluster needs root (slurmd runs jobs as root)"
    missing = _missing_binaries()
    if missing:
        return (
            f"SLURM/munge binaries missing ({', '.join(missing)}); .ci/slurm_up.sh installs "
            "slurm-wlm and munge (as root, with apt-get)"
        )
    return None


def skip_or_fail_without_slurm() -> None:
    """``pytest.skip`` when no cluster can be started here; ``pytest.fail`` when CI is set."""
    reason = why_no_slurm()
    if reason is None:
        return
    if _truthy_env("CI"):
        pytest.fail(f"CI is set, so the SLURM tests must run, but: {reason}", pytrace=False)
    pytest.skip(reason)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text[-lines:]) or "<empty>"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_mib() -> int:
    """RealMemory for the node: 90% of MemAvailable (a bit under ``free -m``)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return max(256, int(int(line.split()[1]) / 1024 * 0.9))
    return 1024


# --------------------------------------------------------------------------- cluster


@dataclass
class SlurmCluster:
    """A running single-node cluster; pass :attr:`env` to subprocesses (it has SLURM_CONF)."""

    root: Path
    node: str
    cpus: int
    real_memory_mib: int
    partition: str = "debug"
    sacct_shim: bool = True
    start_s: float = 0.0
    conf: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    procs: dict[str, subprocess.Popen] = field(init=False, default_factory=dict)
    logs: dict[str, Path] = field(init=False)
    _socket_dir: Path | None = field(init=False, default=None)
    _external_socket_dir: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.conf = self.root / "etc" / "slurm.conf"
        self.logs = {
            # munged logs to stderr in --foreground mode
            "munged": self.root / "log" / "munged.out",
            "slurmctld": self.root / "log" / "slurmctld.log",
            "slurmd": self.root / "log" / "slurmd.log",
        }
        env = {
            k: v
            for k, v in os.environ.items()
            # do not attach to an outer allocation if the tests themselves run under SLURM
            if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SQUEUE_", "SINFO_"))
        }
        env["SLURM_CONF"] = str(self.conf)
        path = _search_path()
        if self.sacct_shim:
            path = os.pathsep.join([str(self.root / "bin"), path])
        env["PATH"] = path
        self.env = env

    # -- convenience ---------------------------------------------------------------

    @property
    def pids(self) -> dict[str, int]:
        """Daemon name -> PID."""
        return {name: p.pid for name, p in self.procs.items()}

    def run(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 60, **kwargs
    ) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client command against this cluster (text output captured)."""
        proc = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=timeout, **kwargs
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def sbatch(self, *args: str) -> str:
        """Submit with ``sbatch --parsable``; returns the job id."""
        out = self.run(["sbatch", "--parsable", *args]).stdout.strip()
        return out.split(";")[0]

    def job_state(self, job_id: str) -> str | None:
        """JobState from ``scontrol show job`` (no accounting here), None if unknown."""
        proc = self.run(["scontrol", "-o", "show", "job", str(job_id)], check=False)
        if proc.returncode != 0:
            return None
        for token in proc.stdout.split():
            if token.startswith("JobState="):
                return token.split("=", 1)[1]
        return None

    def queued_job_ids(self) -> list[str]:
        out = self.run(["squeue", "-h", "-o", "%i"]).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def wait_for_job(self, job_id: str, timeout: float = 120, poll_s: float = 0.5) -> str | None:
        """Poll until the job reaches a terminal state; returns it (None: job purged)."""
        deadline = time.monotonic() + timeout
        state = self.job_state(job_id)
        while state not in TERMINAL_JOB_STATES:
            if state is None:  # left the controller's memory (MinJobAge) or never existed
                return None
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} still {state} after {timeout:.0f}s\n{self.diagnostics()}"
                )
            time.sleep(poll_s)
            state = self.job_state(job_id)
        return state

    def active_steps(self) -> list[str]:
        """Job steps slurmstepd is still serving on the node (from its spool sockets)."""
        spool = self.root / "spool"
        return sorted(p.name for p in spool.glob(f"{self.node}_*") if p.is_socket())

    def node_state(self) -> str:
        proc = self.run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], check=False)
        return proc.stdout.strip() if proc.returncode == 0 else f"<sinfo: {proc.stderr.strip()}>"

    def diagnostics(self) -> str:
        parts = []
        for name, proc in self.procs.items():
            rc = proc.poll()
            parts.append(f"{name} pid {proc.pid}: " + ("running" if rc is None else f"exit {rc}"))
        for name, log in self.logs.items():
            parts.append(f"--- {name} log ({log}) ---\n{_tail(log)}")
        for name in ("slurmctld", "slurmd"):
            out = self.root / "log" / f"{name}.out"
            parts.append(f"--- {name} stdout/stderr ({out}) ---\n{_tail(out, 10)}")
        return "\n".join(parts)

    # -- lifecycle ------------------------------------------------------------------

    @property
    def munge_socket(self) -> Path:
        assert self._socket_dir is not None
        return self._socket_dir / "munge.socket"

    def _prepare(self) -> None:
        for sub in ("bin", "etc", "log", "run", "state", "spool", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for path in (self.root, *(self.root / s for s in ("etc", "munge", "run"))):
            path.chmod(0o700)  # munged refuses group/world-writable dirs
        self._socket_dir = self.root / "run"
        if len(str(self._socket_dir / "munge.socket")) > _UNIX_SOCKET_MAX:
            # a unix socket path must fit in 108 bytes: fall back to a short private dir
            self._socket_dir = Path(tempfile.mkdtemp(prefix="igb-munge-"))
            self._external_socket_dir = True
        key = self.root / "munge" / "munge.key"
        if not key.exists():  # a per-cluster key; /etc/munge is left alone
            key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        if self.sacct_shim:
            sacct = self.root / "bin" / "sacct"
            sacct.write_text(f"#!{sys.executable}\n{_SACCT_SHIM}")
            sacct.chmod(0o755)
        ctld_port, slurmd_port = _free_port(), _free_port()
        while slurmd_port == ctld_port:
            slurmd_port = _free_port()
        r = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "# generated by tests/helpers/slurm_cluster.py: a throwaway one-node cluster",
                    "ClusterName=igbtest",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={slurmd_port}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.logs['slurmctld']}",
                    f"SlurmdLogFile={self.logs['slurmd']}",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "MailProg=/bin/true",
                    "InactiveLimit=0",
                    "KillWait=5",
                    # keep finished jobs visible to `scontrol show job` for 10 min
                    "MinJobAge=600",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={self.real_memory_mib} State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes={self.node} Default=YES "
                    "MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _spawn(self, name: str, cmd: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115
        try:
            self.procs[name] = subprocess.Popen(
                cmd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our own PIDs, detached from the terminal's signals
                cwd=self.root,
            )
        finally:
            out.close()

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            if dead:
                raise SlurmStartError(f"{what}: daemon(s) exited {dead}\n{self.diagnostics()}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise SlurmStartError(
                    f"{what}: not ready after {timeout:.0f}s (node state: "
                    f"{self.node_state() if 'slurmd' in self.procs else 'n/a'})\n"
                    f"{self.diagnostics()}"
                )
            time.sleep(0.25)

    def _munge_ok(self) -> bool:
        if not self.munge_socket.exists():
            return False
        cred = subprocess.run(
            ["munge", "-n", "-S", str(self.munge_socket)], capture_output=True, timeout=10
        )
        if cred.returncode != 0:
            return False
        check = subprocess.run(
            ["unmunge", "-S", str(self.munge_socket)],
            input=cred.stdout,
            capture_output=True,
            timeout=10,
        )
        return check.returncode == 0

    def start(self, timeout: float = 60) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout
        self._prepare()
        munged = which("munged")
        slurmctld = which("slurmctld")
        slurmd = which("slurmd")
        assert munged and slurmctld and slurmd, _missing_binaries()
        # fmt: off
        self._spawn("munged", [
            munged, "--foreground", "--force",
            f"--socket={self.munge_socket}",
            f"--key-file={self.root / 'munge' / 'munge.key'}",
            f"--pid-file={self.root / 'run' / 'munged.pid'}",
            f"--seed-file={self.root / 'munge' / 'munged.seed'}",
        ])
        # fmt: on
        self._wait("munged", self._munge_ok, max(1.0, deadline - time.monotonic()))
        self._spawn("slurmctld", [slurmctld, "-D", "-f", str(self.conf)])
        self._wait(
            "slurmctld",
            lambda: self.run(["scontrol", "ping"], check=False, timeout=10).returncode == 0,
            max(1.0, deadline - time.monotonic()),
        )
        self._spawn("slurmd", [slurmd, "-D", "-f", str(self.conf), "-N", self.node])
        self._wait(
            f"node {self.node} idle",
            lambda: self.node_state() == "idle",
            max(1.0, deadline - time.monotonic()),
        )
        self.start_s = time.monotonic() - t0

    def stop(self, timeout: float = 20) -> None:
        """Cancel jobs, then stop slurmd, slurmctld and munged by PID (TERM, then KILL)."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            with contextlib.suppress(Exception):
                ids = self.queued_job_ids()
                if ids:
                    self.run(["scancel", *ids], check=False)
                    deadline = time.monotonic() + timeout
                    while self.queued_job_ids() and time.monotonic() < deadline:
                        time.sleep(0.25)
        # let slurmstepd finish its steps (each holds a socket <spool>/<node>_<job>.<step>)
        deadline = time.monotonic() + timeout
        while self.active_steps() and time.monotonic() < deadline:
            time.sleep(0.25)
        survivors = []
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None:
                continue
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        survivors.append(f"{name} ({proc.pid})")
        if self._external_socket_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        if survivors:
            raise RuntimeError(f"could not stop: {', '.join(survivors)}")


@contextlib.contextmanager
def slurm_cluster(
    tmp_dir: str | os.PathLike[str],
    *,
    start_timeout: float = 60,
    partition: str = "debug",
    sacct_shim: bool = True,
) -> Iterator[SlurmCluster]:
    """Start a single-node cluster under ``tmp_dir``, yield it.

    Raises :class:`SlurmUnavailable` if no cluster can be started here (call
    :func:`skip_or_fail_without_slurm` first in tests) and :class:`SlurmStartError` with the
    daemons' log tails if the node does not become idle within ``start_timeout`` seconds.
    The daemons are stopped by PID on exit, also when starting or the body fails.
    With ``sacct_shim`` (default) :attr:`SlurmCluster.env` puts a ``sacct`` stand-in first on
    PATH (answering from ``scontrol``; there is no accounting daemon), so that submitit sees
    job states, e.g. a job killed before writing its result, instead of waiting forever.
    """
    reason = why_no_slurm()
    if reason is not None:
        raise SlurmUnavailable(reason)
    cluster = SlurmCluster(
        root=Path(tmp_dir) / "slurm",
        node=socket.gethostname().split(".")[0],
        cpus=os.cpu_count() or 1,
        real_memory_mib=_mem_mib(),
        partition=partition,
        sacct_shim=sacct_shim,
    )
    try:
        cluster.start(timeout=start_timeout)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module", name="slurm")
def cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """Module-scoped fixture ``slurm``: a running cluster; skips (fails under CI) if impossible.

    Import it into a conftest.py or test module:
    ``from helpers.slurm_cluster import cluster_fixture``.
    """
    skip_or_fail_without_slurm()
    with slurm_cluster(tmp_path_factory.mktemp("slurm_cluster")) as cluster:
        yield cluster
