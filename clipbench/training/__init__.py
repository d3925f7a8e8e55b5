"""Training clipbench's own small CLIP models (the packaged ``clipbench-tiny``)."""
