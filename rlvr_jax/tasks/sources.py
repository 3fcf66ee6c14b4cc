"""Read the records of one split through `datasets`, from the hub or from local files.

`data.path` is read as:
* a path containing "{split}" (e.g. "/data/gsm8k/{split}.jsonl"): the split name is
  substituted;
* an existing directory: the first pattern of `SPLIT_FILE_PATTERNS` that matches, e.g.
  "train.jsonl" or the hub layout "main/train-00000-of-00001.parquet";
* an existing file: that file, for the training split only;
* anything else: a hub id, loaded with `datasets.load_dataset(path, subset, split=split)`.
"""

from __future__ import annotations

import glob
import os
from typing import Any

SPLIT_FILE_PATTERNS = (
    "{split}.jsonl",
    "{split}.json",
    "{split}.parquet",
    "{split}.csv",
    "{split}-*.parquet",
    "{subset}/{split}-*.parquet",
    "{subset}/{split}.jsonl",
)
_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _looks_local(path: str) -> bool:
    return "{split}" in path or os.path.exists(path) or path.endswith(tuple(_BUILDERS))


def split_files(path: str, subset: str, split: str, is_train: bool) -> list[str]:
    """Local files holding `split` under `path` (module docstring rules)."""
    if "{split}" in path:
        files = sorted(glob.glob(path.replace("{split}", split)))
    elif os.path.isdir(path):
        files = []
        for pattern in SPLIT_FILE_PATTERNS:
            if "{subset}" in pattern and not subset:
                continue
            files = sorted(
                glob.glob(os.path.join(path, pattern.format(split=split, subset=subset)))
            )
            if files:
                break
    elif os.path.isfile(path):
        if not is_train:
            raise ValueError(
                f"data.path: the single file {path!r} has no {split!r} split; use a directory "
                "or a path with '{split}', or set data.eval_split=''"
            )
        files = [path]
    else:
        files = []
    if not files:
        raise FileNotFoundError(
            f"data.path: no files for split {split!r} under {path!r} "
            f"(tried {'{split}' if '{split}' in path else list(SPLIT_FILE_PATTERNS)})"
        )
    return files


def load_records(path: str, subset: str, split: str, is_train: bool) -> list[dict[str, Any]]:
    """All records of one split, as plain dicts, in file order."""
    import datasets  # deferred: heavy import, not needed by generated datasets

    if not _looks_local(path):
        return datasets.load_dataset(path, subset or None, split=split).to_list()
    files = split_files(path, subset, split, is_train)
    extensions = {os.path.splitext(f)[1] for f in files}
    if len(extensions) != 1 or next(iter(extensions)) not in _BUILDERS:
        raise ValueError(f"data.path: expected one of {sorted(_BUILDERS)} files, got {files}")
    builder = _BUILDERS[extensions.pop()]
    return datasets.load_dataset(builder, data_files=files, split="train").to_list()
