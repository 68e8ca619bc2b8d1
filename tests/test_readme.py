"""The README's "write your own learner" example runs as printed: a learner is its one-task scoring."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from mlscratch.data.classes import ClassImages
from mlscratch.tasks import TaskSampler
from mlscratch.training import fit

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading: str) -> str:
    section = README.read_text().split(f"### {heading}", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_write_your_own_learner_example_trains_predicts_and_rebuilds():
    namespace: dict = {}
    exec(readme_block("Write your own learner"), namespace)
    torch.manual_seed(0)
    learner = namespace["NearestMean"](width=4)
    images = ClassImages.from_tensors(torch.rand(8, 4, 1, 16, 16, generator=torch.Generator().manual_seed(0)))
    tasks = TaskSampler(images, n_way=3, k_shot=1, k_query=2, batch_size=2, seed=0)
    history = fit(learner, tasks, 2, progress=False)
    assert len(history.loss) == 2
    batch = tasks.sample()
    assert learner.predict(*batch[:3]).shape == (2, 6, 3)
    rebuilt = type(learner)(**learner.hparams)
    rebuilt.load_state_dict(learner.state_dict())
    torch.testing.assert_close(rebuilt.predict(*batch[:3]), learner.predict(*batch[:3]))
