"""Results: the typed record, results.jsonl and leaderboards, one reader for compare and report,
per-sample files, the significance-tested gate, history, the HTML report and its plots."""
