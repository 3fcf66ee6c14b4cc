"""The resumable row iterator: epochs, resume from state, per-process slices."""

import json

import pytest

from rlvr_jax.tasks import RowIterator

ROWS = [{"question": f"q{i}", "answer": str(i)} for i in range(10)]


def _ids(batch):
    return [int(row["answer"]) for row in batch]


def test_each_epoch_visits_every_row_once_in_a_new_order():
    it = RowIterator(ROWS, batch_size=5, seed=0)
    epoch0 = _ids(next(it)) + _ids(next(it))
    epoch1 = _ids(next(it)) + _ids(next(it))
    assert sorted(epoch0) == sorted(epoch1) == list(range(10))
    assert epoch0 != epoch1
    assert it.state() == {"epoch": 2, "index": 0, "num_rows": 10}


def test_batches_cross_epoch_boundaries_and_stay_full():
    it = RowIterator(ROWS, batch_size=4, seed=0)
    batches = [_ids(next(it)) for _ in range(5)]  # 20 rows = exactly two epochs
    assert all(len(b) == 4 for b in batches)
    flat = sum(batches, [])
    assert sorted(flat[:10]) == sorted(flat[10:]) == list(range(10))


def test_no_shuffle_keeps_row_order():
    it = RowIterator(ROWS, batch_size=3, seed=0, shuffle=False)
    assert [_ids(next(it)) for _ in range(4)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 0, 1]]


def test_resume_yields_the_next_unseen_batch():
    reference = RowIterator(ROWS, batch_size=3, seed=5)
    expected = [_ids(next(reference)) for _ in range(9)]
    it = RowIterator(ROWS, batch_size=3, seed=5)
    seen = [_ids(next(it)) for _ in range(4)]
    state = json.loads(json.dumps(it.state()))  # what a checkpoint stores
    assert all(type(v) is int for v in state.values())
    resumed = RowIterator(ROWS, batch_size=3, seed=5, state=state)
    assert seen + [_ids(next(resumed)) for _ in range(5)] == expected


def test_processes_take_disjoint_slices_of_the_global_batch():
    whole = RowIterator(ROWS, batch_size=4, seed=1)
    parts = [
        RowIterator(ROWS, batch_size=4, seed=1, process_index=i, process_count=2) for i in (0, 1)
    ]
    for _ in range(5):
        assert _ids(next(parts[0])) + _ids(next(parts[1])) == _ids(next(whole))


def test_state_from_another_dataset_is_refused():
    with pytest.raises(ValueError, match="config changed"):
        RowIterator(ROWS, batch_size=2, seed=0, state={"epoch": 0, "index": 0, "num_rows": 11})


def test_batch_size_must_split_across_processes():
    with pytest.raises(ValueError, match="divisible"):
        RowIterator(ROWS, batch_size=3, seed=0, process_count=2)
