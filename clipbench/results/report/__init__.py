"""``clipbench report``: results -> report.md, report.html and PNG plots (``build.build_report``).

reading (rows, provenance) -> model_facts, published -> blocks, task_section, details (format-free
tables and figures) -> render_markdown, render_html; ``build`` wires them together.
"""

from clipbench.results.report.build import Report, build_report
from clipbench.results.report.reading import load_results

__all__ = ["Report", "build_report", "load_results"]
