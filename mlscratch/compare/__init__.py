"""Every algorithm on the same test tasks, with the statistics a careful reader expects.

    rows = zoo_table.compare_zoo(["maml-5w1s", "protonet-5w1s", "pixel-nn"])   # trained models, baselines
    rows = race.compare_scratch(["maml", "fomaml"], seconds=60, seeds=3)        # equal budget, from scratch
    print(entries.format_table(paired.add_differences(rows, "maml")))

One concern per module: `entries` (a row, scoring, table, plot), `paired` (paired differences, verdicts),
`zoo_table` (the shipped models), `race` (training from scratch), `shipped_baseline` (pretrain-finetune's weights).

Accuracy against the test task shape and across domains is in `mlscratch.generalisation`.
The two baselines of `mlscratch.baselines` ("pixel-nn", "pretrain-finetune") are entries like any algorithm.

Every entry is scored on the same fixed test tasks (`experiment.evaluation_tasks`), so two entries can be
compared task by task: the paired difference mean_t(acc_a(t) - acc_b(t)) with q std / sqrt(n) (q = 1.96, or
Student's t below 30 tasks) is much tighter than two separate CIs. With several training seeds, the spread across
seeds is reported next to the task CI, which leaves seed variance out.
"""
