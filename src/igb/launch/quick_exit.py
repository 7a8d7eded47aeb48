"""A quicker exit for the entry points: the interpreter's last garbage collection skips
the objects that live until the end anyway.

With torch (and Lightning, W&B, Hydra) loaded, most of a process's exit is the final
collection walking every object those libraries created, only to find them alive until
the interpreter tears the modules down. :func:`skip_final_collection` moves them, once
every other exit handler has run, into the permanent generation (:func:`gc.freeze`), which
that collection does not walk. What the exit must do still happens: exit handlers (W&B,
logging's flush and close, the figure worker) run as before, and igb closes its files where
it writes them. What it gives up, Python never promised: the finalizer of an object that
is still alive in a reference cycle when the interpreter exits (``object.__del__``: "It is
not guaranteed that __del__() methods are called for objects that still exist when the
interpreter exits").
"""

from __future__ import annotations

import atexit
import gc


def skip_final_collection() -> None:
    """Freeze the tracked objects at exit, after the exit handlers registered before this
    call (registered first, it runs last)."""
    atexit.register(gc.freeze)
