"""Failures an operator acts on: the message says what failed, where, and what to do.

scripts/train.py prints a `RunError` as one line (no traceback) and exits with status 1;
the cause stays chained (`raise ... from e`) for a debugger or a test.
"""


class RunError(RuntimeError):
    """A run cannot go on for a reason outside the code: disk, permissions, a config change."""


class WorkdirError(RunError):
    """The workdir cannot be created or written; the message names the path."""


class CheckpointWriteError(RunError):
    """A checkpoint could not be written; the message names it and the intact previous one."""


class ConfigChangedError(RunError):
    """A resume would change keys that change training; the message names them."""
