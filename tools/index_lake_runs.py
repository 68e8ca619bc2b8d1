"""Build mlscratch/data/lake_runs.json: Lake's 20 one-shot runs as names of drawings in images_evaluation.zip.

The official runs (github.com/brendenlake/omniglot, python/one-shot-classification/all_runs.zip) hold renamed
copies of evaluation drawings: runNN/training/classMM.png, runNN/test/itemMM.png and runNN/class_labels.txt
("runNN/test/itemMM.png runNN/training/classKK.png" per line: the training image each test image matches).
This script finds every copy in images_evaluation.zip by its pixels (the decoded one-bit image, not the file
bytes, which differ) and writes, per run, the matched drawing names and the answer key: names only, no pixels.

    python tools/index_lake_runs.py path/to/all_runs.zip [--evaluation path/to/images_evaluation.zip]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlscratch.data.lake_runs import INDEX, RUNS, WAYS  # noqa: E402
from mlscratch.data.omniglot import locate_omniglot  # noqa: E402
from mlscratch.io import write_json  # noqa: E402

LINE = re.compile(r"^(run\d\d)/test/(item\d\d)\.png\s+(run\d\d)/training/(class\d\d)\.png$")


def pixel_key(data: bytes) -> str:
    """Digest of the decoded image (size and ink mask): equal drawings, whatever their PNG encoding."""
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("L")) < 128
    return hashlib.sha1(repr(pixels.shape).encode() + np.packbits(pixels).tobytes()).hexdigest()


def evaluation_keys(path: Path) -> dict[str, str]:
    """{pixel digest: member name} of every drawing in images_evaluation.zip; duplicates are an error."""
    keys: dict[str, str] = {}
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            if not member.endswith(".png") or "__MACOSX" in member:
                continue
            key = pixel_key(zf.read(member))
            if key in keys:
                raise SystemExit(f"two evaluation drawings have the same pixels: {keys[key]} and {member}")
            keys[key] = member
    return keys


def index_runs(runs_zip: Path, evaluation_zip: Path) -> dict:
    keys = evaluation_keys(evaluation_zip)
    runs = []
    with zipfile.ZipFile(runs_zip) as zf:
        for r in range(1, RUNS + 1):
            run = f"run{r:02d}"
            names = {}
            for kind, stem in (("train", "training/class"), ("test", "test/item")):
                found = []
                for i in range(1, WAYS + 1):
                    member = f"{run}/{stem}{i:02d}.png"
                    key = pixel_key(zf.read(member))
                    if key not in keys:
                        raise SystemExit(f"{member} matches no drawing of {evaluation_zip}")
                    found.append(keys[key].removeprefix("images_evaluation/"))
                names[kind] = found
            answer = [-1] * WAYS
            for line in zf.read(f"{run}/class_labels.txt").decode().splitlines():
                match = LINE.match(line.strip())
                if not match or match.group(1) != run or match.group(3) != run:
                    raise SystemExit(f"unexpected line in {run}/class_labels.txt: {line!r}")
                answer[int(match.group(2)[4:]) - 1] = int(match.group(4)[5:]) - 1
            if sorted(answer) != list(range(WAYS)):
                raise SystemExit(f"{run}: the answer key is not one test image per training image: {answer}")
            runs.append({"run": run, "train": names["train"], "test": names["test"], "answer": answer})
    return {
        "source": "github.com/brendenlake/omniglot python/one-shot-classification/all_runs.zip, matched by pixels",
        "format": "train[i], test[j]: drawing names inside images_evaluation.zip (without the set folder); "
        "answer[j]: index into train of the training image that test[j] matches (0-based)",
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_zip", type=Path, help="all_runs.zip from the official repository")
    parser.add_argument("--evaluation", type=Path, default=None, help="images_evaluation.zip (default: found)")
    parser.add_argument("--out", type=Path, default=INDEX)
    args = parser.parse_args()
    evaluation = args.evaluation or locate_omniglot(download=False)["images_evaluation"]
    write_json(index_runs(args.runs_zip, evaluation), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
