"""The scoring layer below the tasks: metric functions, resampling, similarity and the per-sample kinds.

Tasks, ``clipbench compare`` and ``clipbench samples`` all score through these modules, so a
number is computed one way wherever it is shown. Nothing here imports ``clipbench.tasks`` or
``clipbench.results``: the layer sits below both.
"""
