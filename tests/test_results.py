"""lib.results: the stored comparisons that chapter 6 gathers."""
import json

import pytest

from lib.experiments import Comparison
from lib.history import History
from lib.results import load_summaries, save_summary


def _comparison(shift: float = 0.0) -> Comparison:
    def run(acc: float) -> History:
        return History(train_loss=[1.0, 0.5], test_loss=[1.1, 0.6], train_acc=[0.5, 0.8],
                       test_acc=[0.4, acc])
    return Comparison({"a": {0: run(0.7 + shift), 1: run(0.8 + shift)},
                       "b": {0: run(0.6), 1: run(0.65)}}, {"epochs": 2})


def test_saved_comparison_reads_back_with_the_same_numbers(tmp_path):
    path = save_summary("02_x", "norm", _comparison(), "test_acc", data="offline set", quick=False,
                        folder=tmp_path)
    assert path == tmp_path / "02_x.json"
    entry = load_summaries(tmp_path)["02_x"]["norm"]
    assert entry["metric"] == "test_acc" and entry["data"] == "offline set"
    restored = entry["comparison"]
    assert restored.final("test_acc") == {"a": {0: 0.7, 1: 0.8}, "b": {0: 0.6, 1: 0.65}}
    assert restored.settings == {"epochs": 2}


def test_a_second_entry_keeps_the_first_and_a_rerun_replaces_its_own(tmp_path):
    save_summary("05_y", "one", _comparison(), "test_acc", data="d", quick=False, folder=tmp_path)
    save_summary("05_y", "two", _comparison(), "train_loss", data="d", quick=False, folder=tmp_path)
    save_summary("05_y", "one", _comparison(0.1), "test_acc", data="d", quick=False, folder=tmp_path)
    entries = load_summaries(tmp_path)["05_y"]
    assert list(entries) == ["one", "two"]
    assert entries["one"]["comparison"].final("test_acc")["a"][0] == pytest.approx(0.8)


def test_quick_mode_writes_nothing(tmp_path):
    assert save_summary("01_z", "x", _comparison(), "test_acc", data="d", quick=True,
                        folder=tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_bad_metric_and_corrupt_file_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="metric"):
        save_summary("01_z", "x", _comparison(), "accuracy", data="d", quick=False, folder=tmp_path)
    (tmp_path / "03_w.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="03_w.json.*delete it"):
        load_summaries(tmp_path)
    (tmp_path / "03_w.json").write_text(json.dumps([1, 2]), encoding="utf-8")
    with pytest.raises(ValueError, match="JSON object"):
        load_summaries(tmp_path)
