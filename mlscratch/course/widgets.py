"""Live panels for the chapters: a few controls, one plain function, a picture.

A `Panel` ties ipywidgets controls to a plain function `compute(**values)` that
returns a matplotlib figure, a text, or both. The function knows nothing about
widgets, so it can be called (and tested) directly; the panel only reads the
controls, calls it, and shows the result. Quick functions rerun on every change;
slow ones (training) wait for a button.

    panel = task_explorer(splits)                      # ch01
    panel = maml_panel(splits)                         # ch02
    panel = training_panel(splits, "meta_dropout",     # a later chapter
                           controls={"dropout": (0.0, 0.5, 0.1)})
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from html import escape

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ..errors import MlscratchError
from ..tasks import TaskSampler
from .notebook import in_notebook, train_and_evaluate
from .plots import plot_history, plot_inner_steps
from .viz import show_task

Compute = Callable[..., object]  # compute(**values) -> Figure | str | (Figure | None, str | None)


def control(name: str, spec: object) -> widgets.ValueWidget:
    """A widget from a short spec, in the spirit of `ipywidgets.interact`.

    widget -> itself; (low, high, value) ints -> IntSlider; with a float -> FloatSlider;
    (low, high, value, step) -> slider with that step; list -> Dropdown (first is the value);
    bool -> Checkbox; int -> IntText; float -> FloatText; str -> Text.
    """
    style = {"description_width": "initial"}
    if isinstance(spec, widgets.ValueWidget):
        return spec
    if isinstance(spec, tuple) and len(spec) in (3, 4):
        low, high, value = spec[:3]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in spec):
            step = spec[3] if len(spec) == 4 else 1
            return widgets.IntSlider(value=value, min=low, max=high, step=step, description=name, style=style)
        step = spec[3] if len(spec) == 4 else (high - low) / 100
        return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=name, style=style)
    if isinstance(spec, list):
        return widgets.Dropdown(options=spec, value=spec[0], description=name, style=style)
    if isinstance(spec, bool):
        return widgets.Checkbox(value=spec, description=name, style=style)
    if isinstance(spec, int):
        return widgets.IntText(value=spec, description=name, style=style)
    if isinstance(spec, float):
        return widgets.FloatText(value=spec, description=name, style=style)
    if isinstance(spec, str):
        return widgets.Text(value=spec, description=name, style=style)
    raise TypeError(f"no widget for {name}={spec!r}; pass a widget, a (low, high, value) tuple, a list or a value")


def figure_png(figure: object) -> bytes:
    """PNG bytes of a matplotlib figure, which is then closed (so it is not shown twice)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def split_result(result: object) -> tuple[object | None, str | None]:
    """compute's return value -> (figure or None, text or None)."""
    if isinstance(result, tuple):
        figure, text = result
        return figure, text
    if isinstance(result, str):
        return None, result
    return result, None


class Panel:
    """Controls, a plain function, and its output.

    controls: name -> widget (or a spec for `control`); the names are compute's keyword arguments
    button:   label of a run button; None reruns compute whenever a control changes
    After each run: `result` is compute's return value, `runs` counts runs, `image.value`
    holds the figure as PNG, `message.value` the text (or the error, if compute raised one).
    """

    def __init__(
        self,
        compute: Compute,
        controls: dict[str, object],
        *,
        button: str | None = None,
        title: str | None = None,
        run_now: bool = True,
    ) -> None:
        self.compute = compute
        self.controls = {name: control(name, spec) for name, spec in controls.items()}
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.message = widgets.HTML()
        self.log = widgets.Output()
        self.result: object = None
        self.runs = 0
        self.button = widgets.Button(description=button, button_style="primary") if button else None
        if self.button is not None:
            self.button.on_click(self.update)
        else:
            for widget in self.controls.values():
                widget.observe(self.update, names="value")
        header = [widgets.HTML(f"<b>{escape(title)}</b>")] if title else []
        buttons = [self.button] if self.button is not None else []
        rows = widgets.GridBox(
            list(self.controls.values()), layout=widgets.Layout(grid_template_columns="repeat(2, minmax(240px, 1fr))")
        )
        self.widget = widgets.VBox([*header, rows, *buttons, self.message, self.image, self.log])
        if run_now:
            self.update()

    def values(self) -> dict[str, object]:
        return {name: widget.value for name, widget in self.controls.items()}

    def update(self, *_: object) -> object:
        """Run compute with the current values and show its result (errors are shown, not raised)."""
        self.message.value = "<i>running ...</i>"
        if self.button is not None:
            self.button.disabled = True
        try:
            if in_notebook():
                self.log.clear_output()
            with self.log:  # progress bars and prints from compute land under the picture
                result = self.compute(**self.values())
        except MlscratchError as error:  # bad settings: say what and how to fix it, keep the panel usable
            self.message.value = f'<span style="color:#b00020">{escape(str(error))}</span>'
            return None
        except Exception as error:  # a bug: show it, and let ipywidgets log the traceback
            self.message.value = (
                f'<span style="color:#b00020">{escape(type(error).__name__)}: {escape(str(error))}</span>'
            )
            raise
        finally:
            if self.button is not None:
                self.button.disabled = False
        figure, text = split_result(result)
        if figure is not None:
            self.image.value = figure_png(figure)
        self.message.value = f"<pre>{escape(text)}</pre>" if text else ""
        self.result = result
        self.runs += 1
        return result

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def panel(
    compute: Compute, *, button: str | None = None, title: str | None = None, run_now: bool = True, **controls: object
) -> Panel:
    """`panel(draw, n_way=(2, 20, 5), split=["train", "val"])`: a Panel from keyword specs."""
    return Panel(compute, controls, button=button, title=title, run_now=run_now)


# --------------------------------------------------------------------------- chapter 1: tasks


def draw_task(splits: dict, n_way: int, k_shot: int, k_query: int, split: str, seed: int) -> tuple[object, str]:
    """One N-way K-shot task from `splits[split]`, drawn with `seed`: (figure, one-line description)."""
    classes = splits[split]
    task = TaskSampler(classes, n_way, k_shot, k_query, batch_size=1, seed=seed).sample()
    figure = show_task(task)
    text = (
        f"{split}: {n_way}-way {k_shot}-shot task, {n_way * k_shot} support and {n_way * k_query} query "
        f"images, drawn from {classes.n_effective_classes} classes (seed {seed})"
    )
    return figure, text


def task_explorer(
    splits: dict, n_way: int = 5, k_shot: int = 1, k_query: int = 5, split: str = "train", seed: int = 0
) -> Panel:
    """Chapter 1: change n_way, k_shot, k_query, split or seed and see the new task."""
    names = [split] + [name for name in splits if name != split]
    return Panel(
        partial(draw_task, splits),
        {
            "n_way": (2, 20, n_way),
            "k_shot": (1, 10, k_shot),
            "k_query": (1, 10, k_query),
            "split": names,
            "seed": widgets.BoundedIntText(value=seed, min=0, max=10**6, description="seed"),
        },
        title="Few-shot task explorer",
    )


# --------------------------------------------------------------------------- chapters 2+: train and evaluate


def experiment_figure(experiment: object) -> object:
    """Training loss and accuracy, and test accuracy against inner steps, side by side."""
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.4))
    plot_history(experiment.history, ax=axes[:2], smooth=max(1, min(20, len(experiment.history.iteration) // 5)))
    if experiment.result.step_accuracies:
        plot_inner_steps(experiment.result, ax=axes[2])
    else:
        axes[2].axis("off")
    figure.tight_layout()
    return figure


def run_experiment(splits: dict, algo: str, settings: dict, **values: object) -> tuple[object, str]:
    """compute() of a training panel: values of the controls + fixed settings -> (figure, summary)."""
    experiment = train_and_evaluate(splits, algo, **{**settings, **values})
    return experiment_figure(experiment), experiment.summary()


def training_panel(
    splits: dict,
    algo: str = "maml",
    controls: dict[str, object] | None = None,
    *,
    n_way: int = 5,
    k_shot: int = 1,
    iterations: int = 30,
    eval_tasks: int = 100,
    title: str | None = None,
    run_now: bool = False,
    **settings: object,
) -> Panel:
    """A panel that meta-trains `algo` briefly and evaluates it when Run is clicked.

    controls: the algorithm's hyperparameters to expose, as `control` specs, e.g.
              {"inner_lr": (0.01, 1.0, 0.4), "inner_steps": (1, 5, 1)}; n_way and k_shot are always there.
    settings: everything else passed to `mlscratch.course.notebook.train_and_evaluate` (meta_batch, seed, device,
              fixed hyperparameters, ...).
    """
    specs = {"n_way": (2, 20, n_way), "k_shot": (1, 10, k_shot), **(controls or {})}
    fixed = {"iterations": iterations, "eval_tasks": eval_tasks, **settings}
    return Panel(
        partial(run_experiment, splits, algo, fixed),
        specs,
        button="Train and evaluate",
        title=title or f"{algo}: train {iterations} iterations, evaluate on {eval_tasks} test tasks",
        run_now=run_now,
    )


def maml_panel(
    splits: dict,
    *,
    inner_lr: float = 0.4,
    inner_steps: int = 1,
    iterations: int = 30,
    eval_tasks: int = 100,
    algo: str = "maml",
    **settings: object,
) -> Panel:
    """Chapter 2: inner_lr, inner steps, n_way, k_shot; Run trains a small MAML and redraws its plots."""
    controls = {"inner_lr": (0.01, 1.0, inner_lr, 0.01), "inner_steps": (1, 5, inner_steps)}
    return training_panel(splits, algo, controls, iterations=iterations, eval_tasks=eval_tasks, **settings)
