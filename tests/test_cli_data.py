"""`python -m mlscratch data info`."""

from __future__ import annotations

import json

from conftest import write_omniglot

from mlscratch.cli import main


def test_info_json_synthetic(capsys):
    assert main(["data", "info", "--dataset", "synthetic", "--protocol", "lake", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dataset"] == "synthetic" and info["protocol"] == "lake"
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


def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    root = write_omniglot(tmp_path / "partial")
    assert main(["data", "info", "--dataset", "omniglot", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "alphabets or characters are missing" in err and "Traceback" not in err
    assert main(["data", "info", "--dataset", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
