"""Command-line groups: data, train/evaluate, chapters."""
