"""Fuzz: thousands of mutated results lines (types swapped, numbers non-finite, strings with control characters,
surrogates and invalid UTF-8, deep nesting, torn lines) between good ones. `history`, `report` and `compare`
exit 0 or 2, never 3 (a bug), and every good line is still reported (issue 27)."""

from __future__ import annotations

import copy
import json
import random
import re

import pytest

from clipbench.cli import main

N_MUTATED = 2500
GOOD = [(f"good-{i}", "cifar10" if i % 2 else "digits", "zeroshot", 40.0 + 7.13 * i) for i in range(5)]
WEIRD_VALUES = [None, True, 0, -1, 1e308, 10**40, "", "x", "\x00\x1b[31mred", "\ud800", "\udfff tail", [], {},
                [1, [2, [3]]], float("nan"), float("inf"), -float("inf"), "<svg onload=alert(1)>", "a|b\n# h",
                "2026-13-45T99:99:99", {"commit": 5}, {"images_per_s_end_to_end": "fast"}]
NAMES = ["../../../x\x07", "a|b\n=c $\\foo{$", "\ud83d"]  # few, so the report stays small; $..$: mathtext


def _record(model, dataset, task, value, ts="2026-11-23T12:00:00+00:00"):
    return {"schema_version": 1, "record_id": f"{model}-{dataset}", "timestamp": ts, "model": model,
            "model_family": "ViT", "dataset": dataset, "task": task, "primary_metric": "top1",
            "metrics": {"top1": value, "top5": min(100.0, value + 10)}, "ci95": {"low": value - 1, "high": value + 1},
            "n_samples": 100, "precision": "fp32", "limit": None, "tag": "t",
            "git": {"commit": "a" * 40, "dirty": False},
            "cost": {"images_per_s_end_to_end": 50.0, "device_name": "cpu"}, "versions": {"clipbench": "0.1"},
            "weights_sha256": "b" * 64, "dataset_fingerprint": "fp"}


def _mutate(rng: random.Random) -> bytes:
    rec = _record("fuzz", "fuzzset", rng.choice(["zeroshot", "linear_probe", "zeroshot_retrieval",
                                                 "image_caption_selection"]), 50.0, "2026-11-22T12:00:00+00:00")
    rec["per_subset"] = {"s": {"accuracy": 50.0, "ci95": {"low": 1, "high": 2}, "n_items": 3}}
    rec["recall_k"] = [1, 5]
    for _ in range(rng.randint(1, 3)):
        subset = rec.get("per_subset", {}).get("s") if isinstance(rec.get("per_subset"), dict) else None
        holders = [rec, rec, *(rec.get(k) for k in ("metrics", "ci95", "git", "cost")), subset]
        holder = rng.choice([h for h in holders if isinstance(h, dict)])
        key = rng.choice(list(holder) or ["k"])
        kind = rng.random()
        if kind < 0.1:
            holder.pop(key, None)
        elif kind < 0.25 and key in ("model", "dataset", "task"):
            holder[key] = rng.choice(NAMES)
        else:
            holder[key] = copy.deepcopy(rng.choice(WEIRD_VALUES))
    line = json.dumps(rec).encode("utf-8")  # allow_nan: NaN and Infinity literals, as a hand edit would leave
    kind = rng.random()
    if kind < 0.1:
        line = line[:rng.randrange(len(line))]  # torn
    elif kind < 0.2:
        i = rng.randrange(len(line))
        line = line[:i] + bytes([rng.choice([0xFF, 0xC3, 0x80, 0x00, 0x0D])]) + line[i + 1:]  # invalid UTF-8 / bytes
    elif kind < 0.25:
        depth = rng.choice([30, 800, 5000])
        line = line[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    return line


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    rng = random.Random(27)
    good = [json.dumps(_record(*row)).encode() for row in GOOD]
    lines = [_mutate(rng) for _ in range(N_MUTATED)]
    for i, line in enumerate(good):  # spread through the file
        lines.insert((i + 1) * len(lines) // (len(good) + 1), line)
    (root / "fuzz").mkdir()
    (root / "fuzz" / "results.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (root / "good").mkdir()
    (root / "good" / "results.jsonl").write_bytes(b"\n".join(good) + b"\n")
    return root, rng


def _run(capsys, *argv, allowed=(0, 2)) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    assert code in allowed, f"exit {code}: " + "\n".join(line for line in out.err.splitlines()[-5:])
    return code, out.out, out.err


def test_history_skips_damaged_lines_and_lists_every_good_one(fuzzed, capsys, tmp_path):
    root, _ = fuzzed
    code, out, _ = _run(capsys, "history", str(root / "fuzz"), "--plot", str(tmp_path / "trend.png"),
                        "--throughput-plot", str(tmp_path / "throughput.png"))
    assert code == 0
    for model, dataset, task, value in GOOD:
        block = out.split(f"{model} / {dataset} / {task} (top1)\n", 1)[1].split("\n", 1)[0]
        assert f"{value:.2f}" in block
    assert (tmp_path / "trend.png").stat().st_size > 1000 and (tmp_path / "throughput.png").is_file()


def test_report_skips_damaged_lines_and_reports_every_good_one(fuzzed, capsys, tmp_path):
    root, _ = fuzzed
    code, _, _ = _run(capsys, "report", str(root / "fuzz"), "--out", str(tmp_path / "report"))
    assert code == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    for model, _, _, value in GOOD:
        assert re.search(rf"^\| {model} \| ViT \|.*\b{value:.1f} \[", markdown, re.M), model
    assert all(p.parent == tmp_path / "report" for p in (tmp_path / "report").rglob("*"))


def test_compare_exits_0_or_2_on_every_kind_of_damaged_line(fuzzed, capsys):
    root, rng = fuzzed
    good = (root / "good" / "results.jsonl").read_bytes()
    folder = root / "one"
    folder.mkdir()
    codes = set()
    for i in range(150):
        (folder / "results.jsonl").write_bytes(good + _mutate(rng) + b"\n")
        new, base = (folder, root / "good") if i % 2 else (root / "good", folder)
        # exit 1 when the baseline gained a (valid) mutated row that the new side lacks: a verdict, not a bug
        codes.add(_run(capsys, "compare", str(new), "--baseline", str(base), "--max-drop", "100",
                       allowed=(0, 1, 2))[0])
    assert 2 in codes and codes & {0, 1}  # most mutations are refused with one line, some leave a valid record


def _with_sample_file(results_dir, record):
    """``record`` with a real classification per-sample file beside it (random scores, 20 samples)."""
    import numpy as np

    from clipbench.results.samples import write_sample_table
    from clipbench.scoring.samples.classification import build_table

    rng = np.random.default_rng(0)
    table = build_table(rng.normal(size=(20, 4)).astype("float32"), rng.integers(0, 4, 20), "logits")
    record = {**record, "n_samples": 20}
    record["samples"] = write_sample_table(results_dir, record, table, "classification", {"classnames": list("abcd")})
    return record


SAMPLE_REF_VALUES = [None, 5, "x", [], {"path": "../../etc/passwd"}, {"path": "/etc/passwd", "sha256": "0" * 64},
                     {"path": "samples/x.parquet", "n": "many"}, {"path": "results.jsonl", "sha256": 3, "n": 1e308},
                     {"path": "samples/\x00.parquet"}, {"path": ["samples"]}]


def test_samples_exits_0_or_2_on_mutated_records_and_still_reads_the_good_one(fuzzed, capsys):
    root, rng = fuzzed
    folder = root / "samples-fuzz"
    folder.mkdir()
    good = _with_sample_file(folder, _record("good-s", "digits", "zeroshot", 55.0))
    good_line = json.dumps(good).encode()
    mutated = []
    for i in range(300):
        rec = json.loads(json.dumps(good))
        rec["record_id"] = f"m{i:04d}"
        if i % 3:  # the reference itself is hostile or wrong
            rec["samples"] = copy.deepcopy(rng.choice(SAMPLE_REF_VALUES)) if i % 3 == 1 else {
                **good["samples"], rng.choice(["sha256", "n", "bytes"]): rng.choice(WEIRD_VALUES)}
        else:  # the rest of the record is
            rec[rng.choice(["model", "dataset", "task", "metrics", "n_samples", "dataset_fingerprint"])] = \
                copy.deepcopy(rng.choice(WEIRD_VALUES))
        mutated.append(json.dumps(rec).encode())
    lines = [_mutate(rng) for _ in range(300)] + mutated
    rng.shuffle(lines)
    (folder / "results.jsonl").write_bytes(b"\n".join([*lines, good_line]) + b"\n")
    codes = {_run(capsys, "samples", f"m{i:04d}", "--results", str(folder), "--format", fmt)[0]
             for i in range(0, 300, 7) for fmt in ("table", "json")}
    assert 2 in codes  # the damaged references are refused with one line
    code, out, _ = _run(capsys, "samples", "good-s", "--results", str(folder))
    assert code == 0 and "20 samples" in out


def test_report_compare_and_history_parse_each_results_file_once(fuzzed, capsys, tmp_path, monkeypatch):
    """Issue 27: `compare` read each side twice (its rows, then its per-sample references) and `report` four
    times; now one command reads each file once, whatever it then draws."""
    from clipbench.results import records, source

    root, _ = fuzzed
    calls = []
    real = records.read_records

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(source, "read_records", counting)
    monkeypatch.setattr(records, "read_records", counting)
    import clipbench.api as api

    monkeypatch.setattr("clipbench.results.records.read_records", counting)
    for argv, expected in ((["compare", str(root / "good"), "--baseline", str(root / "good")], 2),
                           (["report", str(root / "good"), "--out", str(tmp_path / "r")], 1),
                           (["history", str(root / "good"), "--plot", str(tmp_path / "t.png"),
                             "--throughput-plot", str(tmp_path / "p.png")], 1)):
        calls.clear()
        _run(capsys, *argv)
        assert len(calls) == expected, (argv[0], calls)
    assert api  # imported so its lazy imports resolve to the patched reader


def test_a_sample_reference_outside_samples_is_never_followed(tmp_path):
    """A hand-edited reference to a genuine per-sample file outside ``samples/`` (even one whose hash matches)
    is refused by name, before anything is read."""
    from clipbench.results.samples import SampleFileError, read_samples

    (tmp_path / "res").mkdir()
    record = _with_sample_file(tmp_path / "res", _record("m", "d", "zeroshot", 50.0))
    real = tmp_path / "res" / record["samples"]["path"]
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(real.read_bytes())
    assert read_samples(tmp_path / "res", record).label.shape == (20,)
    for path in ("../outside.parquet", str(outside), "samples/../../outside.parquet", "samples/a/b.parquet"):
        with pytest.raises(SampleFileError, match="is not a file under samples/"):
            read_samples(tmp_path / "res", {**record, "samples": {**record["samples"], "path": path}})
