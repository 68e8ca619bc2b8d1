"""`python -m mlscratch data info`."""

from __future__ import annotations

import json
import warnings

from conftest import write_omniglot

from mlscratch.cli import main
from mlscratch.data.splits import SyntheticFallbackWarning


def test_info_json_synthetic(capsys):
    assert main(["data", "info", "--dataset", "synthetic", "--protocol", "lake", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dataset"] == "synthetic" and info["protocol"] == "lake" and info["split_seed"] == 0
    assert info["splits"]["test"] == {
        "alphabets": 20,
        "characters": 240,
        "images": 4800,
        "classes_after_rotation": 240,
        "rotate": False,
    }
    assert len(info["val_held_out_alphabets"]) == 5


def test_info_table_real(omniglot, capsys):
    assert main(["data", "info", "--root", omniglot.source]) == 0
    out = capsys.readouterr().out
    assert "sha256 of the shared re-packed copy" in out
    assert "train         50       1100    22000                      4400" in out
    assert "test          50        423     8460                      1692" in out


def test_info_json_real_lake(omniglot, capsys):
    assert (
        main(["data", "info", "--dataset", "omniglot", "--root", omniglot.source, "--protocol", "lake", "--json"]) == 0
    )
    info = json.loads(capsys.readouterr().out)
    counts = {s: (r["alphabets"], r["characters"], r["images"]) for s, r in info["splits"].items()}
    assert counts["test"] == (20, 659, 13180)
    assert counts["train"][0] + counts["val"][0] == 30 and counts["train"][1] + counts["val"][1] == 964


def test_split_seed_flag(capsys):
    assert main(["data", "info", "--dataset", "synthetic", "--split-seed", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split_seed"] == 3


def test_errors_are_one_line_data_exit_1_config_exit_2(tmp_path, capsys):
    root = write_omniglot(tmp_path / "partial")
    assert main(["data", "info", "--dataset", "omniglot", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "alphabets or characters are missing" in err and "Traceback" not in err
    assert main(["data", "info", "--dataset", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


def test_missing_mlscratch_data_is_an_error_not_another_copy(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "no" / "such" / "dir"
    monkeypatch.setenv("MLSCRATCH_DATA", str(missing))
    assert main(["data", "info"]) == 1
    err = capsys.readouterr().err
    assert f"{missing} (given by MLSCRATCH_DATA) does not exist" in err and "Traceback" not in err


def test_junk_zip_at_root_is_an_error_not_synthetic(tmp_path, capsys):
    root = write_omniglot(tmp_path / "mine")
    (root / "images_evaluation.zip").write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticFallbackWarning)
        assert main(["data", "info", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "images_evaluation.zip is not a readable zip" in err and "SYNTHETIC" not in err
