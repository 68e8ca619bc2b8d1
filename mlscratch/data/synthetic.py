"""SyntheticGlyphs: Omniglot-shaped stroke characters drawn by code, no files needed.

Each *alphabet* has a style (how many strokes, how curvy); each *character* is a
few Bezier strokes in that style; each *drawing* of it is made by one of 20
simulated *drawers*, each with a habitual slant and pen width, plus per-drawing
jitter of the stroke shapes, position, size and angle. So, as in Omniglot, two
drawings of a character look alike but never identical, and few-shot learning on
them is learnable but not trivial.

A fallback and a test fixture: every chapter and test can run anywhere, but
results on it are not Omniglot results, and the loaders say so loudly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from .omniglot import Omniglot

POINTS_PER_STROKE = 32


def bezier_points(control: Tensor, n_points: int = POINTS_PER_STROKE) -> Tensor:
    """Cubic Bezier curves sampled at n_points.  control: [..., 4, 2] -> [..., n_points, 2]."""
    t = torch.linspace(0, 1, n_points)[:, None]
    basis = torch.cat([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], dim=1)  # [T, 4]
    return basis @ control


def render(points: Tensor, weight: Tensor, pen: Tensor, image_size: int) -> Tensor:
    """Draw strokes as a line of small Gaussian blobs, one per point, summed and clipped.

    points: [M, P, 2] (x, y) in [0, 1]^2; weight: [M, P] arc length each point stands for (0 = no ink);
    pen: [M] blob width. Returns [M, 1, S, S] float in [0, 1], ink = 1.
    A 2-D Gaussian is a product of two 1-D ones, so the sum over points is one matrix product per image.
    """
    axis = (torch.arange(image_size) + 0.5) / image_size
    sigma = pen[:, None, None]
    gx = (axis[None, :, None] - points[:, None, :, 0]).square_().div_(-2 * sigma**2).exp_()  # [M, S, P]
    gy = (axis[None, :, None] - points[:, None, :, 1]).square_().div_(-2 * sigma**2).exp_()  # [M, S, P]
    density = weight[:, None, :] / (sigma * (2 * torch.pi) ** 0.5)
    ink = (gy * density) @ gx.transpose(1, 2)  # [M, S(y), S(x)], about 1 on a stroke's centre line
    return (1.5 * ink).clamp(0, 1)[:, None]


class SyntheticGlyphs(Omniglot):
    """Procedural characters with the interface and shapes of `Omniglot` (images [n, drawings, 1, S, S]).

    The first `background_alphabets` alphabets play the role of images_background, the
    rest images_evaluation, so both split protocols work unchanged. Same seed, same glyphs.
    """

    def __init__(
        self,
        background_alphabets: int = 30,
        evaluation_alphabets: int = 20,
        characters_per_alphabet: int = 12,
        drawings: int = 20,
        image_size: int = 28,
        seed: int = 0,
    ) -> None:
        for name, value in (
            ("background_alphabets", background_alphabets),
            ("evaluation_alphabets", evaluation_alphabets),
            ("characters_per_alphabet", characters_per_alphabet),
            ("drawings", drawings),
            ("image_size", image_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"SyntheticGlyphs: {name} must be a positive integer, got {value!r}")
        g = torch.Generator().manual_seed(seed)
        n_alphabets = background_alphabets + evaluation_alphabets
        n_chars = n_alphabets * characters_per_alphabet
        max_strokes = 4

        # Alphabet style: typical stroke count and how far control points stray (curviness).
        alphabet_strokes = torch.randint(1, max_strokes + 1, (n_alphabets,), generator=g)
        alphabet_curve = 0.08 + 0.17 * torch.rand(n_alphabets, generator=g)
        alphabet = torch.arange(n_alphabets).repeat_interleave(characters_per_alphabet)  # [n_chars]

        # Character: strokes from a start and an end point, with two curvy inner control points.
        ends = 0.15 + 0.7 * torch.rand(n_chars, max_strokes, 2, 2, generator=g)
        bend = torch.randn(n_chars, max_strokes, 2, 2, generator=g) * alphabet_curve[alphabet, None, None, None]
        inner = ends.mean(dim=2, keepdim=True) + bend
        control = torch.stack([ends[:, :, 0], inner[:, :, 0], inner[:, :, 1], ends[:, :, 1]], dim=2)
        n_strokes = (alphabet_strokes[alphabet] + torch.randint(-1, 2, (n_chars,), generator=g)).clamp(1, max_strokes)

        # Drawer habits (slant, pen width) and per-drawing jitter.
        slant = 0.25 * torch.randn(drawings, generator=g)
        pen = 0.022 + 0.012 * torch.rand(drawings, generator=g)
        m = n_chars * drawings
        wobble = 0.025 * torch.randn(m, max_strokes, 4, 2, generator=g)
        angle = 0.12 * torch.randn(m, generator=g)
        scale = 1 + 0.08 * torch.randn(m, generator=g)
        shift = 0.04 * torch.randn(m, 2, generator=g)

        drawer = torch.arange(drawings).repeat(n_chars)  # [m]
        points = bezier_points(control.repeat_interleave(drawings, dim=0) + wobble)  # [m, strokes, T, 2]
        used = torch.arange(max_strokes)[None, :] < n_strokes.repeat_interleave(drawings)[:, None]
        points = points.flatten(1, 2) - 0.5
        cos, sin = angle.cos(), angle.sin()
        transform = torch.stack([torch.stack([cos, -sin + slant[drawer]], -1), torch.stack([sin, cos], -1)], -2)
        points = (points @ (scale[:, None, None] * transform).transpose(1, 2)) + 0.5 + shift[:, None]
        # Each point inks the arc length around it (half of each neighbouring segment); unused strokes none.
        segment = (points[:, 1:] - points[:, :-1]).norm(dim=-1)  # [m, P-1]
        segment = segment.reshape(m, -1).masked_fill(
            torch.arange(segment.shape[1]) % POINTS_PER_STROKE == POINTS_PER_STROKE - 1, 0
        )  # no segment between strokes
        weight = (torch.nn.functional.pad(segment, (1, 0)) + torch.nn.functional.pad(segment, (0, 1))) / 2
        weight = weight * used.repeat_interleave(POINTS_PER_STROKE, dim=1)
        images = render(points, weight, pen[drawer], image_size).reshape(n_chars, drawings, 1, image_size, image_size)

        alphabets = [f"Glyphs_{a:02d}" for a in alphabet.tolist()]
        names = [f"{alphabets[c]}/character{c % characters_per_alphabet + 1:02d}" for c in range(n_chars)]
        super().__init__(
            images=images,
            alphabets=alphabets,
            names=names,
            drawers=(torch.arange(drawings) + 1).repeat(n_chars, 1),
            background=alphabet < background_alphabets,
            source=f"synthetic glyphs (seed {seed})",
            meta={"dataset": "synthetic", "seed": seed},
        )
