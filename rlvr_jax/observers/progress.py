"""Live progress bars (tqdm) for a terminal; the console sink uses them only on a TTY.

    with logs_above_bars(sys.stderr):             # log records print above the bars
        bar = Bar("train", total=200, initial=12, stream=sys.stderr)
        bar.show(13, "reward 0.412 | acc 0.375 | 14.2 s/step | 310 tok/s | eta 44m29s")
        bar.close()

A bar prints our own fields (the console sink measures s/step and the ETA itself: the
first step's compilation is kept out of the average), not tqdm's rate. Elsewhere (CI, a
file, a pipe) the console sink writes plain log lines instead, so captured output stays
line-based: `is_terminal(stream)` decides.

While bars are shown, the console handlers' stream is swapped for one that writes through
`tqdm.write`, which clears the bars, prints the record and draws them again; without it a
log record lands in the middle of a bar's line.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import IO, Any

from absl import logging as absl_logging
from tqdm import tqdm

_FORMAT = "{desc} {bar:24} {n_fmt}/{total_fmt} | {fields}"


def is_terminal(stream: IO[str]) -> bool:
    """Whether `stream` is an interactive terminal with a width (live bars), or not (lines).

    A pseudo-terminal of zero columns (some CI runners, `script` without a size) counts as
    not a terminal: tqdm would draw nothing there.
    """
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError, AttributeError):
        return False


class _FieldsTqdm(tqdm):
    """tqdm with one more format field, `{fields}`: our text, without tqdm's ', ' prefix."""

    fields = ""

    @property
    def format_dict(self) -> dict[str, Any]:
        return {**super().format_dict, "fields": self.fields}


class Bar:
    """One tqdm bar that shows a count out of `total` and a text of our fields."""

    def __init__(self, desc: str, total: int, initial: int, stream: IO[str], leave: bool = True):
        self._bar = _FieldsTqdm(
            total=total,
            initial=initial,
            desc=desc,
            file=stream,
            bar_format=_FORMAT,
            leave=leave,
            dynamic_ncols=True,
            mininterval=0.0,
        )

    def show(self, count: int, text: str) -> None:
        self._bar.n = count
        self._bar.fields = text
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


class _TqdmStream:
    """A file-like stream whose writes go through `tqdm.write` (above the bars)."""

    def __init__(self, stream: IO[str]):
        self._stream = stream

    def write(self, text: str) -> int:
        tqdm.write(text, file=self._stream, end="")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return is_terminal(self._stream)


def _stream_handlers(stream: IO[str]) -> list[logging.StreamHandler]:
    absl_handler = absl_logging.get_absl_handler()
    handlers = [absl_handler.python_handler, *logging.getLogger().handlers]
    return [
        h
        for h in dict.fromkeys(handlers)
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is stream
    ]


@contextlib.contextmanager
def logs_above_bars(stream: IO[str]) -> Iterator[None]:
    """Handlers writing to `stream` write through tqdm while the block runs."""
    handlers = _stream_handlers(stream)
    for handler in handlers:
        handler.setStream(_TqdmStream(stream))  # type: ignore[arg-type]
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(stream)
