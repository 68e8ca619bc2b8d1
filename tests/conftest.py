"""Shared fixtures: a tiny Omniglot-layout zip pair, and the real Omniglot copy (or a clear skip)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory):
    """All tests write preprocessed tensors to a temporary cache, never to ~/.cache or the repository.

    The real Omniglot is decoded once per session (about 7 s) and read back from this cache afterwards.
    """
    folder = tmp_path_factory.mktemp("mlscratch_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLSCRATCH_CACHE", str(folder))
        yield folder


def drawing_png(mark: int, size: int = 105) -> bytes:
    """A one-bit 105x105 PNG like Omniglot's: white paper (1), a black (0) square whose place encodes `mark`."""
    pixels = np.ones((size, size), dtype=bool)
    row, col = divmod(mark % 25, 5)
    pixels[row * 20 + 5 : row * 20 + 20, col * 20 + 5 : col * 20 + 20] = False
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def write_omniglot(
    folder: Path, alphabets: tuple[int, int] = (2, 1), characters: int = 3, drawings: int = 4, as_zip: bool = True
) -> Path:
    """Omniglot's official layout with few alphabets: <set>/<Alphabet>/characterNN/NNNN_DD.png.

    Drawing DD of global character number NNNN has its mark at place (NNNN + DD) % 25.
    """
    folder.mkdir(parents=True, exist_ok=True)
    number = 0
    for set_name, n_alphabets in zip(("images_background", "images_evaluation"), alphabets, strict=True):
        files = {}
        for a in range(n_alphabets):
            for c in range(characters):
                number += 1
                for d in range(1, drawings + 1):
                    name = f"{set_name}/{set_name[7:].title()}_{a}/character{c + 1:02d}/{number:04d}_{d:02d}.png"
                    files[name] = drawing_png(number + d)
        if as_zip:
            with zipfile.ZipFile(folder / f"{set_name}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in files.items():
                    zf.writestr(name, data)
        else:
            for name, data in files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def small_omniglot(tmp_path: Path) -> Path:
    """Folder with images_background.zip (2 alphabets) and images_evaluation.zip (1), 3 characters x 4 drawings."""
    return write_omniglot(tmp_path / "omniglot")


def find_real_omniglot() -> Path | None:
    for folder in (os.environ.get("MLSCRATCH_DATA"), REPO_ROOT.parent / "shared" / "data" / "omniglot"):
        if folder and all(
            (Path(folder) / f"{s}.zip").exists() or (Path(folder) / s).is_dir()
            for s in ("images_background", "images_evaluation")
        ):
            return Path(folder)
    return None


@pytest.fixture(scope="session")
def omniglot_root() -> Path:
    """The real Omniglot copy: $MLSCRATCH_DATA, else ../shared/data/omniglot beside the repository."""
    root = find_real_omniglot()
    if root is None:
        pytest.skip(
            "real Omniglot not found: set MLSCRATCH_DATA to a folder with images_background.zip and "
            "images_evaluation.zip, or place them in ../shared/data/omniglot next to the repository"
        )
    return root


@pytest.fixture(scope="session")
def omniglot(omniglot_root: Path, session_cache: Path):
    """All 1,623 real characters, decoded once per session into the session cache."""
    from mlscratch.data import load_omniglot

    return load_omniglot(omniglot_root)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one torch thread is faster, and far faster when other processes share the cores.
    Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_zoo_model(tmp_path, monkeypatch):
    """A two-iteration MAML zoo model on synthetic 16x16 data, registered as "tiny-compare" for one test."""
    from mlscratch import zoo
    from mlscratch.experiment import Settings
    from mlscratch.zoo.recipes import Recipe

    settings = Settings(algo="maml", hparams={"width": 4}, dataset="synthetic", image_size=16, ways=3, queries=1,
                        eval_queries=2, meta_batch=2, iterations=2, val_tasks=4, eval_tasks=8)  # fmt: skip
    zoo.add(Recipe("tiny-compare", settings, 50.0, "a test"))
    monkeypatch.setattr(zoo.store, "WEIGHTS", tmp_path / "weights")
    zoo.train("tiny-compare", checkpoint_folder=tmp_path / "runs", progress=False)
    yield "tiny-compare"
    del zoo.RECIPES["tiny-compare"]
