"""`python -m mlscratch challenge`: a model, or the official baseline, on Lake's 20 one-shot runs.

    python -m mlscratch challenge --hausdorff                  # the official baseline (38.75% errors)
    python -m mlscratch challenge --model protonet-lake-20w1s  # a zoo model
    python -m mlscratch challenge --model pretrain-finetune    # the baseline pretrained on the background set
    python -m mlscratch challenge --checkpoint runs/lake.pt    # your own, trained with --protocol lake

Prints the error rate over the 400 test images with its 95% Wilson interval, beside people and Bayesian
Program Learning. Models trained on the `paper` split are refused: they saw the evaluation characters.
"""

from __future__ import annotations

import argparse

from .. import zoo
from ..challenge import REFERENCES, ChallengeResult, check_trained_on, score_hausdorff, score_learner
from ..checkpoint import load_checkpoint
from ..compare.shipped_baseline import LAKE_BASELINE, SHIPPED_BASELINES, read_baseline
from ..data.lake_runs import load_lake_runs
from ..device import resolve_device
from ..errors import ConfigError
from ..io import write_json

BASELINE = "pretrain-finetune"
ORIGINAL_SIZE = 105  # the Hausdorff baseline reads the original drawings, as the official demo does


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "challenge", help="error rate on Lake's 20 one-shot runs, beside people and BPL", description=__doc__
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", default=None, help="a checkpoint trained with --protocol lake")
    which.add_argument("--model", default=None, help="a zoo model trained on the lake protocol")
    which.add_argument("--hausdorff", action="store_true", help="the official modified Hausdorff baseline")
    parser.add_argument("--root", default=None, help="folder with the Omniglot zips (default: MLSCRATCH_DATA)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto, ...")
    parser.add_argument("--json", default=None, help="write the result here as JSON")
    parser.set_defaults(func=run_challenge)


def run_challenge(args: argparse.Namespace) -> int:
    if args.hausdorff:
        result = score_hausdorff(load_lake_runs(args.root, image_size=ORIGINAL_SIZE))
    else:
        device = resolve_device(args.device)
        if args.model == BASELINE:
            if not (SHIPPED_BASELINES / LAKE_BASELINE).is_file():
                raise ConfigError(f"no lake-pretrained {BASELINE} is shipped; make it with "
                                  f"python -m mlscratch zoo train {BASELINE} --protocol lake")  # fmt: skip
            learner = read_baseline(SHIPPED_BASELINES / LAKE_BASELINE)[0].to(device)
            settings, who = {"protocol": "lake", "image_size": 28}, f"{BASELINE} (pretrained on the background set)"
        elif args.model is not None:
            learner = zoo.load(args.model, device=device)
            settings, who = learner.zoo["settings"], f"zoo model {args.model}"
        else:
            learner = load_checkpoint(args.checkpoint, device=device)
            settings, who = learner.checkpoint_info["metadata"] or {}, f"checkpoint {args.checkpoint}"
        check_trained_on(settings, who)
        runs = load_lake_runs(args.root, image_size=settings.get("image_size", 28))
        result = score_learner(learner, runs, who)
    print(report(result))
    if args.json:
        write_json({**result.to_record(), "references": [ref.__dict__ for ref in REFERENCES]}, args.json)
    return 0


def report(result: ChallengeResult) -> str:
    lines = [f"{result.who}: {result}"]
    lines += [f"  {ref.who}: {ref.error}% errors ({ref.source})" for ref in REFERENCES]
    lines.append("  interval: 95% Wilson score interval over the test images, counted as independent")
    return "\n".join(lines)


__all__ = ["register"]
