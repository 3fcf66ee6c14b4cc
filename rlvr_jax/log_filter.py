"""Which log records reach the console: ours at every level, other packages' at WARNING+.

Orbax logs about 45 INFO records per checkpoint save (and a 1.3 kB one when a manager is
made), JAX one per backend it cannot find, absl and datasets their internals: a console
buried under them hides the run. `quiet_third_party_logging(True)` drops every record below
WARNING whose source file lies in an installed package other than rlvr_jax (site-packages,
or the standard library); warnings and errors still pass, and so does everything rlvr_jax,
the scripts and the tests log. `observers.third_party_logging = True` restores the records
(`quiet_third_party_logging(False)`).

The filter sits on the handlers (absl's, and those of the root logger), not on loggers:
Orbax logs through absl's logger as we do, so the logger's name cannot tell them apart, and
a logger's filter does not see records that propagate from its children. The record's
source file can tell them apart. Idempotent: calling again replaces the previous setting.
`third_party_held_back()` also holds back their warnings and errors for a block whose
failure rlvr_jax reports itself (a checkpoint save).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import site
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from absl import logging as absl_logging

_OURS = str(Path(__file__).resolve().parent) + os.sep  # the rlvr_jax package


def _installed_roots() -> tuple[str, ...]:
    """Directories whose modules count as third party: site-packages and the stdlib."""
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("purelib", "platlib", "stdlib", "platstdlib")}
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return tuple(sorted({str(Path(root).resolve()) + os.sep for root in roots if root}))


class ThirdPartyInfoFilter(logging.Filter):
    """Drops records below `threshold` (WARNING) from installed packages other than rlvr_jax."""

    def __init__(self) -> None:
        super().__init__()
        self._roots = _installed_roots()
        self.threshold = logging.WARNING

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.threshold:
            return True
        return not is_third_party(record.pathname, self._roots)


@functools.lru_cache(maxsize=4096)
def is_third_party(pathname: str, roots: tuple[str, ...]) -> bool:
    """Whether a record's source file is in one of `roots` but not in rlvr_jax."""
    path = os.path.realpath(pathname) if pathname else ""
    if path.startswith(_OURS):
        return False
    return path.startswith(roots)


def _handlers() -> list[logging.Handler]:
    handlers = [absl_logging.get_absl_handler(), *logging.getLogger().handlers]
    return list(dict.fromkeys(handlers))  # absl's handler is on root under absl.app.run


def quiet_third_party_logging(quiet: bool) -> None:
    """Drop (`quiet`) or pass third-party records below WARNING on the console handlers.

    Call it once the handlers exist (absl.app.run installs absl's before `main`); the
    training loop calls it with `not observers.third_party_logging`.
    """
    for handler in _handlers():
        for old in [f for f in handler.filters if isinstance(f, ThirdPartyInfoFilter)]:
            handler.removeFilter(old)
        if quiet:
            handler.addFilter(ThirdPartyInfoFilter())


@contextlib.contextmanager
def third_party_held_back() -> Iterator[None]:
    """While the block runs, the installed filters drop third-party records of every level.

    For a failure rlvr_jax re-raises with its cause in one message: Orbax logs a failed
    save at ERROR from each of its threads, tracebacks included, before the exception
    reaches us. Without the quiet filter (`observers.third_party_logging = True`) nothing
    is held back.
    """
    filters = [f for h in _handlers() for f in h.filters if isinstance(f, ThirdPartyInfoFilter)]
    for f in filters:
        f.threshold = logging.CRITICAL + 1
    try:
        yield
    finally:
        for f in filters:
            f.threshold = logging.WARNING
