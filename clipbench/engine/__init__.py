"""The engine: run options, the runner (model -> dataset -> task, with the feature provider),
torch.distributed, and the applications built on it (predict, index/search)."""
