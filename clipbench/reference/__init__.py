"""Bundled reference facts (published numbers) that reports show next to measured ones."""
