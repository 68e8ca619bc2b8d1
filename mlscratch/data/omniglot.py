"""Omniglot (Lake et al. 2015): 1,623 handwritten characters from 50 alphabets, 20 drawings each.

The official release is two zips, `images_background` (30 alphabets, 964 characters)
and `images_evaluation` (20 alphabets, 659 characters), laid out as
`images_background/<Alphabet>/characterNN/NNNN_DD.png`: 105x105 one-bit PNGs, ink
black (0), where DD is the person (drawer 01..20) who drew it.

`load_omniglot()` finds the zips (or extracted folders), reads them in place,
resizes every drawing to 28x28 with a smoothing (Lanczos) filter, flips it so that
ink = 1, and caches the result, so later loads take a fraction of a second.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..errors import ConfigError, DataError
from ..io import atomic_write
from .cache import cached, default_cache_dir, key_digest, source_identity
from .classes import ClassImages

SETS = ("images_background", "images_evaluation")
EXPECTED = {"images_background": (30, 964), "images_evaluation": (20, 659)}  # (alphabets, characters)
DRAWINGS = 20
OFFICIAL = {  # what `download_omniglot` fetches; the md5 is checked on every download
    "images_background": (
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_background.zip",
        "68d2efa1b9178cc56df9314c21c6e718",
    ),
    "images_evaluation": (
        "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/images_evaluation.zip",
        "6b91aef0f799c5bb55b94e3f2daec811",
    ),
}
KNOWN_SHA256 = {  # the re-packed copies in ../shared/data/omniglot (same PNGs, different zip bytes)
    "236b154d0e6334f364479a5329afea6dab9ff215c148a78d72363ce8c76d5426": "images_background",
    "8620260a0350fc57296716a3f1e394d2b4024b02f9ba3e1b8bb03e65e7594c6d": "images_evaluation",
}
DRAWING_NAME = re.compile(r"^(\d{4})_(\d{2})\.png$")
REPO_ROOT = Path(__file__).resolve().parents[2]
HOW_TO_GET_IT = (
    "put images_background.zip and images_evaluation.zip (or their extracted folders) in one folder and "
    "pass it as root= / --root, or set MLSCRATCH_DATA to it; or use dataset='synthetic' to run without Omniglot"
)


@dataclass
class Omniglot:
    """All characters of one character data set, with where each came from.

    images:     [n_characters, 20, 1, S, S] float32 in [0, 1], ink = 1
    alphabets:  alphabet of each character, e.g. "Latin"
    names:      "Alphabet/characterNN" for each character
    drawers:    [n_characters, 20] long, who drew each drawing (1..20, from NNNN_DD.png)
    background: [n_characters] bool, True for images_background (Lake's training set)
    """

    images: Tensor
    alphabets: list[str]
    names: list[str]
    drawers: Tensor
    background: Tensor
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_characters(self) -> int:
        return self.images.shape[0]

    @property
    def n_drawings(self) -> int:
        return self.images.shape[0] * self.images.shape[1]

    def alphabet_names(self) -> list[str]:
        """Alphabets in order of first appearance."""
        return list(dict.fromkeys(self.alphabets))

    def classes(self, ids: Tensor | list[int] | None = None, rotate: bool = False) -> ClassImages:
        """Characters `ids` (default: all) as a ClassImages split; shares the image storage."""
        if ids is None:
            ids = torch.arange(self.n_characters)
        ids = torch.as_tensor(ids, dtype=torch.long)
        counts = torch.full((len(ids),), self.images.shape[1], dtype=torch.long)
        return ClassImages(
            self.images[ids],
            counts,
            [self.names[i] for i in ids.tolist()],
            rotate=rotate,
            source=self.source,
            meta=dict(self.meta),
        )


# ---------------------------------------------------------------- finding the files


class OmniglotUnavailable(DataError):
    """Omniglot is nowhere: no location given, no copy found, and no download possible.

    The only case in which dataset="auto" may fall back to synthetic glyphs; every other data problem
    (a wrong location, a damaged zip) is an error the user has to see.
    """


def given_location(root: str | Path | None = None) -> tuple[Path, str] | None:
    """(folder, how it was given) if the user named a location: `root`, else $MLSCRATCH_DATA; else None."""
    if root is not None:
        return Path(root).expanduser(), "root= / --root"
    if os.environ.get("MLSCRATCH_DATA"):
        return Path(os.environ["MLSCRATCH_DATA"]).expanduser(), "MLSCRATCH_DATA"
    return None


def candidate_roots(root: str | Path | None = None) -> list[Path]:
    """Where we look: only the location the user gave (`root`, else $MLSCRATCH_DATA), if any; otherwise
    ../shared/data/omniglot beside the repository (or the current folder), then the download folder."""
    given = given_location(root)
    if given is not None:
        return [given[0]]
    found = [base.parent / "shared" / "data" / "omniglot" for base in (REPO_ROOT, Path.cwd())]
    found.append(default_cache_dir() / "omniglot")
    return list(dict.fromkeys(found))


def find_sets(folder: Path) -> dict[str, Path] | None:
    """{set name: zip or folder} if `folder` holds both Omniglot sets, else None."""
    if folder.name.removesuffix(".zip") in SETS:  # pointed at one of the sets itself: use the folder holding it
        folder = folder.parent
    sets = {}
    for name in SETS:
        for path in (folder / name, folder / f"{name}.zip"):
            if path.exists():
                sets[name] = path
                break
    return sets if len(sets) == len(SETS) else None


def sets_at(folder: Path, how: str) -> dict[str, Path]:
    """The two sets in a location the user gave; DataError naming the path if they are not there.

    A location the user named is never silently replaced by another copy or by synthetic glyphs.
    """
    if not folder.exists():
        unset = ", or unset it to use the usual places" if how == "MLSCRATCH_DATA" else ""
        raise DataError(
            f"{folder} (given by {how}) does not exist; point {how} at the folder holding "
            f"images_background(.zip) and images_evaluation(.zip){unset}"
        )
    sets = find_sets(folder)
    if sets is None:
        raise DataError(
            f"no Omniglot in {folder} (given by {how}): expected images_background(.zip) and "
            f"images_evaluation(.zip) there; {HOW_TO_GET_IT}"
        )
    return sets


def locate_omniglot(root: str | Path | None = None, download: bool = True) -> dict[str, Path]:
    """Paths of images_background and images_evaluation (zip or folder).

    A given location (`root`, else $MLSCRATCH_DATA) is the only place looked at. Without one: the usual
    places, then a download into the user cache; OmniglotUnavailable if that is not possible.
    """
    given = given_location(root)
    if given is not None:
        return sets_at(*given)
    for folder in candidate_roots():
        sets = find_sets(folder)
        if sets:
            return sets
    if not download:
        looked = ", ".join(str(p) for p in candidate_roots())
        raise OmniglotUnavailable(f"Omniglot not found (looked in {looked}) and download=False; {HOW_TO_GET_IT}")
    return download_omniglot(default_cache_dir() / "omniglot")


def download_omniglot(folder: Path) -> dict[str, Path]:
    """Fetch the official zips into `folder`, checking each md5; nothing partial is ever left behind."""
    for name, (url, md5) in OFFICIAL.items():
        target = folder / f"{name}.zip"
        if not target.exists():
            print(f"downloading {url} -> {target}", file=sys.stderr)
            download_file(url, target, md5)
    return {name: folder / f"{name}.zip" for name in SETS}


def download_chunks(url: str) -> Iterator[bytes]:
    """The bytes at `url`, 1 MiB at a time; OmniglotUnavailable if they cannot be fetched (no network, ...)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                yield chunk
    except OSError as error:  # URLError, timeouts, resets; errors writing the chunks are not caught here
        raise OmniglotUnavailable(
            f"could not download {url} ({error}); check your internet connection, or {HOW_TO_GET_IT}"
        ) from error


def download_file(url: str, target: Path, md5: str) -> None:
    """Download `url` to `target`, atomically: the md5 is checked before the file is moved into place."""

    def fetch_and_check(out: IO[bytes]) -> None:
        digest = hashlib.md5()
        for chunk in download_chunks(url):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != md5:  # raising here makes atomic_write delete the temporary file
            raise DataError(
                f"download of {url} has md5 {digest.hexdigest()}, expected {md5}: it was corrupted "
                f"or changed; try again, or {HOW_TO_GET_IT}"
            )

    atomic_write(target, fetch_and_check, suffix=".part")


# ---------------------------------------------------------------- reading the drawings


def list_drawings(source: Path, set_name: str) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """{(alphabet, character): [(drawer, member), ...] sorted by drawer} for a zip or a folder."""
    if source.is_dir():
        members = [str(p.relative_to(source.parent)) for p in source.rglob("*.png")]
        members = [m.replace(os.sep, "/") for m in members]
    else:
        with open_zip(source) as zf:
            members = zf.namelist()
    drawings: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for member in members:
        parts = member.strip("/").split("/")
        if member.endswith("/") or parts[0] == "__MACOSX" or parts[-1].startswith(".") or parts[0] != set_name:
            continue
        if len(parts) != 4:
            raise DataError(
                f"unexpected entry {member!r} in {source}: expected {set_name}/<Alphabet>/characterNN/"
                "NNNN_DD.png; use the official Omniglot layout"
            )
        match = DRAWING_NAME.match(parts[3])
        if not match:
            raise DataError(
                f"unexpected file {member!r} in {source}: drawings are named NNNN_DD.png; "
                "remove the file or restore the official copy"
            )
        drawings.setdefault((parts[1], parts[2]), []).append((int(match.group(2)), member))
    if not drawings:
        raise DataError(f"{source} holds no drawings under {set_name}/; {HOW_TO_GET_IT}")
    return {key: sorted(drawings[key]) for key in sorted(drawings)}


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(
            f"{path} is not a readable zip ({error}): it is truncated or corrupted; "
            f"delete it and download or copy it again"
        ) from error


def check_structure(source: Path, set_name: str, drawings: dict, verify: bool) -> None:
    """Every character must have the same number of drawings; with `verify`, the official counts."""
    counts = {key: len(v) for key, v in drawings.items()}
    usual = max(set(counts.values()), key=list(counts.values()).count)
    odd = [f"{a}/{c} ({n})" for (a, c), n in counts.items() if n != usual]
    if odd:
        raise DataError(
            f"{source}: some characters have a different number of drawings than the usual {usual}: "
            f"{', '.join(odd[:5])}; the copy is incomplete, restore it"
        )
    if not verify:
        return
    alphabets, characters = len({a for a, _ in drawings}), len(drawings)
    want_alphabets, want_characters = EXPECTED[set_name]
    if (alphabets, characters, usual) != (want_alphabets, want_characters, DRAWINGS):
        raise DataError(
            f"{source} has {alphabets} alphabets, {characters} characters and {usual} drawings each, "
            f"but the official {set_name} has {want_alphabets}, {want_characters} and {DRAWINGS}: "
            "alphabets or characters are missing; restore the full copy (or download the official "
            "zips), or pass verify=False to load a deliberately partial copy"
        )


def read_members(source: Path, members: list[str]) -> Iterator[tuple[str, bytes]]:
    """(member, file bytes) for each member of a zip or folder; DataError if the archive is damaged."""
    if source.is_dir():
        for member in members:
            yield member, (source.parent / member).read_bytes()
        return
    with open_zip(source) as zf:
        for member in members:
            try:
                data = zf.read(member)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
                raise DataError(
                    f"{source} is corrupted or truncated (reading {member}: {error}); "
                    "delete it and download or copy it again"
                ) from error
            yield member, data


def decode(data: bytes, image_size: int, where: str) -> np.ndarray:
    """PNG bytes -> [S, S] uint8 with ink = 255, resized with a Lanczos (smoothing) filter."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("L")
            if image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.LANCZOS)
            return 255 - np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(f"cannot read image {where} ({error}); replace the file or restore the data set") from error


def read_omniglot(sets: dict[str, Path], image_size: int, verify: bool) -> dict:
    """Decode every drawing; the value stored in the cache (images as uint8 to keep it small)."""
    listings = {name: list_drawings(path, name) for name, path in sets.items()}
    for name, path in sets.items():
        check_structure(path, name, listings[name], verify)
    per_char = {len(v) for listing in listings.values() for v in listing.values()}
    if len(per_char) != 1:
        raise DataError(
            f"the two sets have different numbers of drawings per character ({sorted(per_char)}); "
            "restore the official copies"
        )
    drawings_per_char = per_char.pop()
    alphabets, names, drawers, background, blocks = [], [], [], [], []
    for name, path in sets.items():
        listing = listings[name]
        members = [member for entries in listing.values() for _, member in entries]
        images = np.empty((len(members), image_size, image_size), dtype=np.uint8)
        for i, (member, data) in enumerate(read_members(path, members)):
            images[i] = decode(data, image_size, f"{path}:{member}" if path.is_file() else member)
        blocks.append(images.reshape(len(listing), drawings_per_char, 1, image_size, image_size))
        for (alphabet, character), entries in listing.items():
            alphabets.append(alphabet)
            names.append(f"{alphabet}/{character}")
            drawers.append([d for d, _ in entries])
            background.append(name == "images_background")
    return {
        "images": torch.from_numpy(np.concatenate(blocks)),
        "alphabets": alphabets,
        "names": names,
        "drawers": torch.tensor(drawers, dtype=torch.long),
        "background": torch.tensor(background),
        "checksums": {name: describe_checksum(path) for name, path in sets.items()},
    }


def describe_checksum(path: Path) -> str:
    """How a source was recognised: a known checksum, or (folders, unknown zips) its structure."""
    if path.is_dir():
        return "folder, checked by structure"
    digest_sha, digest_md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest_sha.update(chunk)
            digest_md5.update(chunk)
    if digest_sha.hexdigest() in KNOWN_SHA256:
        return "sha256 of the shared re-packed copy"
    if digest_md5.hexdigest() in {md5 for _, md5 in OFFICIAL.values()}:
        return "md5 of the official release"
    return "unknown checksum, checked by structure"


def load_omniglot(
    root: str | Path | None = None,
    image_size: int = 28,
    cache_dir: str | Path | None = None,
    download: bool = True,
    verify: bool = True,
) -> Omniglot:
    """All 1,623 Omniglot characters, preprocessed and cached.

    root:       folder with images_background(.zip) and images_evaluation(.zip); default $MLSCRATCH_DATA.
                A given location must hold Omniglot (DataError otherwise). With neither: search
                ../shared/data/omniglot, then the user cache (downloading there if needed)
    image_size: side of the square images (28 as in MAML/ProtoNets; 105 keeps the originals)
    cache_dir:  where preprocessed tensors go (default $MLSCRATCH_CACHE or ~/.cache/mlscratch)
    verify:     insist on the official counts (30 + 20 alphabets, 964 + 659 characters, 20 drawings)
    """
    if not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(f"image_size must be a positive integer, got {image_size!r}")
    sets = locate_omniglot(root, download=download)
    paths = [sets[name].resolve() for name in SETS]
    key = {
        "dataset": "omniglot",
        "sources": source_identity(paths),
        "image_size": image_size,
        "filter": "lanczos",
        "verify": verify,
    }
    name = f"omniglot-{image_size}px-{key_digest({'paths': [str(p) for p in paths]})}"
    value, from_cache = cached(name, key, lambda: read_omniglot(sets, image_size, verify), cache_dir)
    images = value["images"].float().div_(255)
    source = str(paths[0].parent)
    meta = {
        "dataset": "omniglot",
        "sets": {n: str(p) for n, p in zip(SETS, paths, strict=True)},
        "checked": value["checksums"],
        "from_cache": from_cache,
    }
    return Omniglot(
        images, value["alphabets"], value["names"], value["drawers"], value["background"], source=source, meta=meta
    )
