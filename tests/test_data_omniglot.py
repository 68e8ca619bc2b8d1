"""Omniglot loader: layout, preprocessing, cache, download, splits and every bad-input case."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import drawing_png, write_omniglot
from PIL import Image

from mlscratch.data import load_omniglot, load_splits
from mlscratch.data import omniglot as og
from mlscratch.data.splits import SyntheticFallbackWarning
from mlscratch.errors import ConfigError, DataError


def load_small(root: Path, cache: Path, **kw):
    return load_omniglot(root, cache_dir=cache, verify=False, **kw)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---------------------------------------------------------------- small generated zips


def test_small_zip_layout_metadata_and_pixels(small_omniglot, tmp_path):
    chars = load_small(small_omniglot, tmp_path / "cache")
    assert chars.images.shape == (9, 4, 1, 28, 28)
    assert chars.images.dtype == torch.float32
    assert 0 <= float(chars.images.min()) and float(chars.images.max()) <= 1
    assert chars.alphabets[:3] == ["Background_0"] * 3 and chars.alphabets[-1] == "Evaluation_0"
    assert chars.names[0] == "Background_0/character01"
    assert chars.background.tolist() == [True] * 6 + [False] * 3
    assert chars.drawers.tolist() == [[1, 2, 3, 4]] * 9
    # ink = 1: the paper (corner) is 0, the mark of drawing d of character number n sits at place (n + d) % 25
    assert float(chars.images[:, :, 0, 0, 0].max()) == 0
    for c in (0, 4, 8):
        for d in range(4):
            row, col = divmod((c + 1 + d + 1) % 25, 5)
            centre = ((row * 20 + 12) * 28 // 105, (col * 20 + 12) * 28 // 105)
            assert float(chars.images[c, d, 0][centre]) > 0.9
            assert float(chars.images[c, d].sum()) == pytest.approx(float(chars.images[0, 0].sum()), rel=0.1)


def test_extracted_folders_give_the_same_tensors(small_omniglot, tmp_path):
    folders = write_omniglot(tmp_path / "extracted", as_zip=False)
    from_zip = load_small(small_omniglot, tmp_path / "cache")
    from_folders = load_small(folders, tmp_path / "cache")
    assert torch.equal(from_zip.images, from_folders.images)
    assert from_zip.names == from_folders.names
    assert from_folders.meta["checked"]["images_background"] == "folder, checked by structure"


def test_root_may_name_one_of_the_sets(small_omniglot, tmp_path):
    chars = load_small(small_omniglot / "images_background.zip", tmp_path / "cache")
    assert chars.n_characters == 9


def test_cache_is_reused_and_written_atomically(small_omniglot, tmp_path):
    cache = tmp_path / "cache"
    first = load_small(small_omniglot, cache)
    second = load_small(small_omniglot, cache)
    assert not first.meta["from_cache"] and second.meta["from_cache"]
    assert torch.equal(first.images, second.images) and first.names == second.names
    assert len(files_in(cache)) == 1 and files_in(cache)[0].endswith(".pt")  # no temp files left


def test_cache_rebuilt_when_source_or_settings_change(small_omniglot, tmp_path):
    cache = tmp_path / "cache"
    load_small(small_omniglot, cache)
    assert load_small(small_omniglot, cache, image_size=14).meta["from_cache"] is False
    assert load_small(small_omniglot, cache, image_size=14).images.shape[-1] == 14
    # Replace the background set with different drawings: same path, new size and mtime.
    zip_path = small_omniglot / "images_background.zip"
    write_omniglot(tmp_path / "other", alphabets=(3, 1))
    os.replace(tmp_path / "other" / "images_background.zip", zip_path)
    rebuilt = load_small(small_omniglot, cache)
    assert rebuilt.meta["from_cache"] is False and rebuilt.n_characters == 12
    # Same bytes, only a newer modification time: rebuilt too (identity = path, size, mtime).
    stat = zip_path.stat()
    os.utime(zip_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_small(small_omniglot, cache).meta["from_cache"] is False
    assert load_small(small_omniglot, cache).meta["from_cache"] is True


def test_damaged_cache_file_is_rebuilt(small_omniglot, tmp_path):
    cache = tmp_path / "cache"
    good = load_small(small_omniglot, cache)
    (entry,) = cache.glob("*.pt")
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match="rebuilding"):
        again = load_small(small_omniglot, cache)
    assert torch.equal(good.images, again.images) and not again.meta["from_cache"]


def test_cache_default_location_from_environment(small_omniglot, tmp_path, monkeypatch):
    monkeypatch.setenv("MLSCRATCH_CACHE", str(tmp_path / "env_cache"))
    load_omniglot(small_omniglot, verify=False)
    assert len(files_in(tmp_path / "env_cache")) == 1


# ---------------------------------------------------------------- bad input


def test_partial_copy_rejected_by_structure_check(small_omniglot, tmp_path):
    with pytest.raises(DataError, match=r"2 alphabets.*official images_background has 30.*verify=False"):
        load_omniglot(small_omniglot, cache_dir=tmp_path / "cache")
    assert files_in(tmp_path / "cache") == []


def test_missing_alphabet_rejected(omniglot_root):
    """The real background set minus one alphabet is named as incomplete."""
    listing = og.list_drawings(omniglot_root / "images_background.zip", "images_background")
    partial = {key: value for key, value in listing.items() if key[0] != "Latin"}
    og.check_structure(omniglot_root, "images_background", listing, verify=True)  # the full set passes
    with pytest.raises(DataError, match="29 alphabets, 938 characters.*alphabets or characters are missing"):
        og.check_structure(omniglot_root, "images_background", partial, verify=True)


def test_partial_extracted_folder_rejected(tmp_path):
    root = write_omniglot(tmp_path / "o", as_zip=False)
    with pytest.raises(DataError, match="has 2 alphabets, 6 characters"):
        load_omniglot(root, cache_dir=tmp_path / "cache")


def test_character_with_missing_drawings_rejected(tmp_path):
    root = write_omniglot(tmp_path / "o", as_zip=False)
    victim = next((root / "images_background").rglob("*_02.png"))
    victim.unlink()
    with pytest.raises(DataError, match=r"different number of drawings.*\(3\).*incomplete"):
        load_small(root, tmp_path / "cache")
    assert files_in(tmp_path / "cache") == []


def test_truncated_zip(small_omniglot, tmp_path):
    zip_path = small_omniglot / "images_evaluation.zip"
    zip_path.write_bytes(zip_path.read_bytes()[: zip_path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupted.*download or copy it again"):
        load_small(small_omniglot, tmp_path / "cache")
    assert files_in(tmp_path / "cache") == []


def test_corrupted_member_in_zip(small_omniglot, tmp_path):
    zip_path = small_omniglot / "images_background.zip"
    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + info.compress_size):  # scramble the first member's compressed bytes
        data[i] ^= 0x5A
    zip_path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupted or truncated"):
        load_small(small_omniglot, tmp_path / "cache")
    assert files_in(tmp_path / "cache") == []


def test_unreadable_image(tmp_path):
    root = write_omniglot(tmp_path / "o", as_zip=False)
    victim = next((root / "images_evaluation").rglob("*_03.png"))
    victim.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=f"cannot read image .*{victim.name}.*replace the file"):
        load_small(root, tmp_path / "cache")


def test_badly_named_drawing(tmp_path):
    root = write_omniglot(tmp_path / "o", as_zip=False)
    next((root / "images_background").rglob("*_01.png")).rename(
        root / "images_background" / "Background_0" / "character01" / "drawing.png"
    )
    with pytest.raises(DataError, match="NNNN_DD.png"):
        load_small(root, tmp_path / "cache")


def test_root_without_omniglot(tmp_path):
    with pytest.raises(DataError, match=f"no Omniglot in {tmp_path} \\(given by root.*MLSCRATCH_DATA"):
        load_omniglot(tmp_path)


def test_bad_image_size(small_omniglot):
    with pytest.raises(ConfigError, match="image_size"):
        load_omniglot(small_omniglot, image_size=0)


def test_unknown_protocol_and_dataset():
    with pytest.raises(ConfigError, match="unknown protocol 'vinyals'.*paper, lake"):
        load_splits("synthetic", "vinyals")
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'.*synthetic"):
        load_splits("mnist")


# ---------------------------------------------------------------- where the data comes from


def network_down(*args, **kwargs):
    raise urllib.error.URLError("network is down (test)")


@pytest.fixture
def nothing_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No root, no MLSCRATCH_DATA, no ../shared copy, an empty cache, no network.

    Returns the ../shared/data/omniglot folder beside the (pretend) repository, for tests to put a copy in.
    """
    monkeypatch.setattr(og, "REPO_ROOT", tmp_path / "elsewhere" / "repo")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLSCRATCH_DATA", raising=False)
    monkeypatch.setenv("MLSCRATCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(og.urllib.request, "urlopen", network_down)
    return tmp_path / "elsewhere" / "shared" / "data" / "omniglot"


@pytest.mark.parametrize("dataset", ["omniglot", "auto"])
def test_given_root_that_does_not_exist_is_named(nothing_configured, tmp_path, dataset):
    write_omniglot(nothing_configured)  # another copy exists, but the user asked for a different place
    missing = tmp_path / "no" / "such" / "dir"
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticFallbackWarning)
        with pytest.raises(DataError, match=f"{missing} \\(given by root= / --root\\) does not exist; point"):
            load_splits(dataset, root=missing)


@pytest.mark.parametrize("dataset", ["omniglot", "auto"])
def test_mlscratch_data_that_does_not_exist_is_not_replaced(nothing_configured, tmp_path, monkeypatch, dataset):
    write_omniglot(nothing_configured)
    assert og.locate_omniglot()["images_background"].parent == nothing_configured  # found when nothing is given
    missing = tmp_path / "no" / "such" / "dir"
    monkeypatch.setenv("MLSCRATCH_DATA", str(missing))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticFallbackWarning)
        with pytest.raises(DataError, match=f"{missing} \\(given by MLSCRATCH_DATA\\) does not exist.*unset it"):
            load_splits(dataset)


@pytest.mark.parametrize("given_by", ["root", "MLSCRATCH_DATA", "../shared copy"])
def test_junk_zip_is_an_error_under_auto_not_synthetic(nothing_configured, tmp_path, monkeypatch, given_by):
    folder = nothing_configured if given_by == "../shared copy" else tmp_path / "mine"
    write_omniglot(folder)
    (folder / "images_background.zip").write_bytes(b"this is not a zip file")
    if given_by == "MLSCRATCH_DATA":
        monkeypatch.setenv("MLSCRATCH_DATA", str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticFallbackWarning)
        with pytest.raises(DataError, match="images_background.zip is not a readable zip.*download or copy it"):
            load_splits("auto", root=folder if given_by == "root" else None)


def test_auto_falls_back_once_when_nothing_is_configured(nothing_configured, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = load_splits("auto")
    assert parts["train"].meta["dataset"] == "synthetic"
    assert [w.category for w in caught] == [SyntheticFallbackWarning]  # said once, as one warning
    message = str(caught[0].message)
    assert "could not download" in message and "network is down" in message and "NOT Omniglot results" in message
    assert "SYNTHETIC" not in capsys.readouterr().err  # not printed a second time
    with pytest.raises(og.OmniglotUnavailable, match="could not download"):  # asked for by name: no substitute
        load_splits("omniglot")


# ---------------------------------------------------------------- download


def official_from(folder: Path, md5s: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    return {
        name: (
            (folder / f"{name}.zip").as_uri(),
            (md5s or {}).get(name) or hashlib.md5((folder / f"{name}.zip").read_bytes()).hexdigest(),
        )
        for name in og.SETS
    }


def test_download_checks_md5_and_is_found_afterwards(small_omniglot, tmp_path, monkeypatch):
    monkeypatch.setattr(og, "OFFICIAL", official_from(small_omniglot))
    monkeypatch.setattr(og, "REPO_ROOT", tmp_path / "elsewhere" / "repo")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLSCRATCH_DATA", raising=False)
    monkeypatch.setenv("MLSCRATCH_CACHE", str(tmp_path / "cache"))
    sets = og.locate_omniglot()
    assert sets == {n: tmp_path / "cache" / "omniglot" / f"{n}.zip" for n in og.SETS}
    assert files_in(tmp_path / "cache" / "omniglot") == ["images_background.zip", "images_evaluation.zip"]
    assert og.locate_omniglot() == sets  # found in the cache now, no second download


def test_download_with_wrong_md5_leaves_nothing(small_omniglot, tmp_path, monkeypatch):
    monkeypatch.setattr(og, "OFFICIAL", official_from(small_omniglot, {"images_evaluation": "0" * 32}))
    with pytest.raises(DataError, match="md5 .* expected 0{32}.*try again"):
        og.download_omniglot(tmp_path / "dl")
    assert files_in(tmp_path / "dl") == ["images_background.zip"]  # the good one only, no partial file


def test_download_failure_names_the_fix(tmp_path, monkeypatch):
    missing = {n: ((tmp_path / "nowhere.zip").as_uri(), "0" * 32) for n in og.SETS}
    monkeypatch.setattr(og, "OFFICIAL", missing)
    with pytest.raises(og.OmniglotUnavailable, match="could not download.*MLSCRATCH_DATA.*synthetic"):
        og.download_omniglot(tmp_path / "dl")
    assert files_in(tmp_path / "dl") == []


def test_not_found_without_download(nothing_configured):
    with pytest.raises(og.OmniglotUnavailable, match="Omniglot not found.*download=False.*MLSCRATCH_DATA"):
        og.locate_omniglot(download=False)


# ---------------------------------------------------------------- the real Omniglot


def test_real_omniglot_counts(omniglot):
    assert omniglot.images.shape == (1623, 20, 1, 28, 28)
    assert int(omniglot.background.sum()) == 964
    assert len(omniglot.alphabet_names()) == 50
    assert len({a for a, bg in zip(omniglot.alphabets, omniglot.background.tolist(), strict=True) if bg}) == 30
    assert omniglot.drawers.tolist() == [list(range(1, 21))] * 1623
    assert set(omniglot.meta["checked"].values()) == {"sha256 of the shared re-packed copy"}
    assert 0.05 < float(omniglot.images.mean()) < 0.15  # ink = 1 is the minority of pixels
    assert float(omniglot.images[:, :, :, 0, :].mean()) < 0.01  # the border is paper


def test_real_known_duplicate_drawings(omniglot):
    """Braille/character01 drawings 0192_03 and 0192_19 are identical in the original data."""
    c = omniglot.names.index("Braille/character01")
    assert torch.equal(omniglot.images[c, 2], omniglot.images[c, 18])
    assert not torch.equal(omniglot.images[c, 2], omniglot.images[c, 3])


def test_real_second_load_comes_from_cache(omniglot, omniglot_root):
    again = load_omniglot(omniglot_root)
    assert again.meta["from_cache"] and torch.equal(again.images, omniglot.images)


def fingerprint(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def test_real_paper_split(omniglot):
    splits = load_splits("omniglot", "paper", root=omniglot.source)
    assert [splits[s].n_classes for s in ("train", "val", "test")] == [1100, 100, 423]
    assert all(s.rotate and s.n_effective_classes == 4 * s.n_classes for s in splits.values())
    names = [set(splits[s].names) for s in ("train", "val", "test")]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert len(names[0] | names[1] | names[2]) == 1623
    assert splits["test"].meta["split_seed"] == 0
    # split_seed=0 is the split of the first release (then `seed=0`), which trained models depend on
    assert fingerprint(splits["train"].names) == "25292b6d268e4349"
    assert fingerprint(splits["test"].names) == "5d415ccd077bc7a5"
    other = load_splits("omniglot", "paper", root=omniglot.source, split_seed=1)
    assert other["test"].names != splits["test"].names


def test_real_lake_split(omniglot):
    splits = load_splits("omniglot", "lake", root=omniglot.source)
    alphabets = {s: {n.split("/")[0] for n in splits[s].names} for s in splits}
    assert (len(alphabets["train"]), len(alphabets["val"]), len(alphabets["test"])) == (25, 5, 20)
    assert splits["train"].n_classes + splits["val"].n_classes == 964 and splits["test"].n_classes == 659
    assert not (alphabets["train"] & alphabets["val"] or alphabets["train"] & alphabets["test"])
    assert not any(s.rotate for s in splits.values())
    assert splits["val"].meta["held_out_alphabets"] == sorted(alphabets["val"])
    assert fingerprint(splits["val"].names) == "0b4273f880c5bb0f"  # the first release's seed=0 split
    other = load_splits("omniglot", "lake", root=omniglot.source, split_seed=1)
    assert other["val"].meta["held_out_alphabets"] != splits["val"].meta["held_out_alphabets"]


def test_drawing_png_helper_is_one_bit():
    assert Image.open(io.BytesIO(drawing_png(3))).mode == "1"
