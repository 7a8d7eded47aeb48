"""The job folder's status file: what a folder holds is a result only once it says so.

``status.json`` moves through ``running`` -> ``finished`` | ``failed`` | ``diverged`` |
``interrupted``. Analysis tools and relaunches read it; a folder without
``"status": "finished"`` is never taken for a result.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
FINISHED = "finished"


class JobFolder:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def status_file(self) -> Path:
        return self.path / STATUS_FILE

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    @property
    def status(self) -> str | None:
        return self.read().get("status")

    def is_finished(self) -> bool:
        return self.status == FINISHED

    def mark(self, status: str, **info: Any) -> None:
        """Atomically rewrite the status file, keeping earlier fields (start time, ids)."""
        data = self.read()
        data.update(info)
        data.update(status=status, updated=time.time(), host=socket.gethostname())
        data.setdefault("started", data["updated"])
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, self.status_file)

    def mark_failed(self, exc: BaseException, status: str = "failed") -> None:
        self.mark(
            status,
            error=f"{type(exc).__name__}: {exc}".splitlines()[0],
            traceback="".join(traceback.format_exception(exc)),
        )
