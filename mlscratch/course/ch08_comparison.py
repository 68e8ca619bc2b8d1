"""Chapter 08, the comparison: what the chapter needs from the course (the comparison itself is the library's
`mlscratch.compare` and `mlscratch.generalisation`)."""

from __future__ import annotations

# What the chapter uses from the course's shared modules, so that it imports the course from this one module.
from .notebook import describe_splits, load_data, report, setup  # noqa: F401
