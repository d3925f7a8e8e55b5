"""The significance-tested gate: exact McNemar and the paired bootstrap against scipy, noise passes,
a broken preprocessing step fails, and every way of lacking per-sample files falls back to the fixed rule."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from torchvision import transforms

import clipbench
from clipbench.cli import main
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import sha256_file
from clipbench.models import load_model
from clipbench.models.preprocess import CLIP_MEAN, CLIP_STD, to_rgb
from clipbench.results.records import read_records, write_leaderboards
from clipbench.results.significance import Tolerances, gated_compare
from clipbench.scoring.classification import mean_per_class_recall
from clipbench.scoring.paired import discordant, mcnemar_exact, paired_bootstrap
from clipbench.suites import parse_suite

# --- the tests themselves, on hand-computed cases --------------------------------------------


def test_mcnemar_hand_computed_cases():
    assert mcnemar_exact(4, 0) == pytest.approx(2 * 0.5 ** 4)  # 0.125: four flips are noise
    assert mcnemar_exact(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)  # 0.0386
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(7, 7) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)


@pytest.mark.parametrize("b,c", [(4, 0), (0, 5), (10, 2), (3, 9), (17, 30), (120, 80), (1000, 1100), (6, 7)])
def test_mcnemar_matches_scipy_exact_binomial_test(b, c):
    expected = scipy.stats.binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_discordant_counts():
    base = np.array([1, 1, 0, 0, 1], bool)
    new = np.array([1, 0, 1, 0, 0], bool)
    assert discordant(base, new) == (2, 1)


def test_paired_bootstrap_hand_computed_cases():
    labels = np.zeros(2, dtype=np.int64)
    # two samples, one newly right: d* is 0, 50 or 100 points with probability 1/4, 1/2, 1/4
    d, low, high, p = paired_bootstrap("top1", labels, np.array([0, 0], bool), np.array([1, 0], bool),
                                       n_resamples=4000, seed=1)
    assert d == 50.0 and (low, high) == (0.0, 100.0)
    assert p == pytest.approx(0.5, abs=0.03)  # P(|d* - 50| >= 50) = 1/2
    # every sample flips the same way: no spread at all
    labels = np.arange(10) % 3
    d, low, high, p = paired_bootstrap("top1", labels, np.ones(10, bool), np.zeros(10, bool), n_resamples=200)
    assert (d, low, high) == (-100.0, -100.0, -100.0) and p < 0.01
    # no difference: p = 1
    same = np.array([1, 0, 1, 1, 0], bool)
    assert paired_bootstrap("top1", np.arange(5) % 2, same, same, n_resamples=100)[3] == 1.0


def test_paired_bootstrap_ci_agrees_with_scipy():
    rng = np.random.default_rng(0)
    n = 797
    labels = rng.integers(0, 10, n)
    base = rng.random(n) < 0.66
    new = np.where(rng.random(n) < 0.1, ~base, base)  # 10% of the samples flip
    d, low, high, _ = paired_bootstrap("top1", labels, base, new, n_resamples=4000, seed=0)
    ref = scipy.stats.bootstrap((base.astype(float), new.astype(float)), lambda x, y, axis: 100 * (y.mean(axis)
                                - x.mean(axis)), paired=True, vectorized=True, n_resamples=4000,
                                method="percentile", random_state=1)
    assert d == pytest.approx(100 * (new.mean() - base.mean()))
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.35)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.35)


def test_paired_bootstrap_mean_per_class_recall():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(4), [5, 20, 40, 100])  # unbalanced: recall differs from accuracy
    base = rng.random(len(labels)) < 0.7
    new = base.copy()
    new[:5] = False  # the small class loses everything
    d, low, high, p = paired_bootstrap("mean_per_class_recall", labels, base, new, n_resamples=2000)
    as_predictions = lambda ok: np.where(ok, labels, (labels + 1) % 4)  # noqa: E731
    expected = (mean_per_class_recall(as_predictions(new), labels, 4)
                - mean_per_class_recall(as_predictions(base), labels, 4))
    assert d == pytest.approx(expected) and d < -10
    assert low <= d <= high and p < 0.05


# --- the gate on real runs ------------------------------------------------------------------

SUITE = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot"],
                     "options": {"bootstrap": 0, "offline": True, "threads": 1}}, "t", "gate", check_dataset=None)


def _tiny(mean=CLIP_MEAN, std=CLIP_STD):
    model = load_model("clipbench-tiny", device="cpu", offline=True)
    if (mean, std) != (CLIP_MEAN, CLIP_STD):  # a preprocessing bug: same model, same preprocess_id, wrong pixels
        model.preprocess = transforms.Compose([
            transforms.Resize(model.image_resolution, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(model.image_resolution), to_rgb, transforms.ToTensor(),
            transforms.Normalize(mean, std)])
    return model


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    clipbench.run(_tiny(), suite=SUITE, cache_dir=root / "cache", results_dir=root / "base", device="cpu",
                  progress=False)
    return root


def _flip(results: Path, n: int, label: int | None = None, primary: str = "top1") -> float:
    """Make ``n`` right zero-shot predictions (of class ``label`` if given) wrong, as a retrained model might;
    returns the new top-1. ``primary`` becomes the record's primary metric."""
    file = results / "results.jsonl"
    (record,) = read_records(file)
    path = results / record["samples"]["path"]
    table = pq.read_table(path)
    rank = table.column("label_rank").to_numpy().copy()
    labels = table.column("label").to_numpy()
    top5 = np.array(table.column("top5").to_pylist())
    right = np.flatnonzero((rank == 0) & ((labels == label) if label is not None else True))[:n]
    rank[right] = 1
    top5[right, 0], top5[right, 1] = top5[right, 1], top5[right, 0].copy()
    meta = table.schema.metadata
    for name, column in (("label_rank", pa.array(rank)), ("correct", pa.array(rank == 0)),
                         ("top5", pa.FixedSizeListArray.from_arrays(pa.array(top5.ravel()), 5))):
        table = table.set_column(table.schema.get_field_index(name), name, column)
    pq.write_table(table.replace_schema_metadata(meta), path)
    record["metrics"]["top1"] = float(100.0 * (rank == 0).mean())
    record["metrics"]["mean_per_class_recall"] = mean_per_class_recall(np.where(rank == 0, labels, -1), labels)
    record["primary_metric"] = primary
    record["samples"]["sha256"] = sha256_file(path)
    file.write_text(json.dumps(record) + "\n")
    write_leaderboards(results)
    return record["metrics"]["top1"]


@pytest.fixture
def noisy(baseline, tmp_path):
    new = tmp_path / "new"
    shutil.copytree(baseline / "base", new)
    _flip(new, 4)
    return new


def test_a_drop_of_4_samples_out_of_797_passes_but_the_fixed_rule_fails_it(baseline, noisy, capsys):
    base = baseline / "base"
    result = gated_compare(noisy, base, max_drop=0.25)
    (row,) = result.rows
    assert row.delta == pytest.approx(-400 / 797) and row.status == "ok" and not result.failed
    test = result.tests[row.model, row.dataset, row.task, row.variant]
    assert test.test == "mcnemar" and test.discordant == (4, 0) and test.p_value == pytest.approx(0.125)
    assert "drop of 0.50 [" in row.note and "p = 0.125: not significant at alpha 0.05, passes" in row.note
    assert main(["compare", str(noisy), "--baseline", str(base), "--max-drop", "0.25"]) == 0
    # the summary says what it counted: the 0.50 drop passed as not significant, it is not "0 dropped"
    assert ("PASS: 0 significant drops of more than 0.25 points; 1 drop of more than 0.25 points not significant "
            "at alpha 0.05; 0 missing" in capsys.readouterr().out)
    # the leaderboard CSV has no sample references: the old rule, which calls 4 samples a regression
    assert main(["compare", str(noisy / "leaderboard.csv"), "--baseline", str(base), "--max-drop", "0.25"]) == 1
    out = capsys.readouterr().out
    assert "drop of 0.50, > max-drop 0.25: regression (fixed rule: the new is a leaderboard CSV" in out
    assert "FAIL: 1 fixed-rule drop of more than 0.25 points; 0 missing" in out


def test_mean_per_class_recall_rows_get_a_paired_bootstrap(baseline, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(baseline / "base", base)
    _flip(base, 0, primary="mean_per_class_recall")  # the same predictions, judged on mean per-class recall
    for n, expected in ((3, "ok"), (40, "DROP")):
        new = tmp_path / f"new{n}"
        shutil.copytree(baseline / "base", new)
        _flip(new, n, label=3, primary="mean_per_class_recall")  # errors concentrated in one class
        result = gated_compare(new, base, max_drop=0.0)  # any significant drop fails
        (row,) = result.rows
        test = result.tests[row.model, row.dataset, row.task, row.variant]
        assert row.metric == "mean_per_class_recall" and test.test == "bootstrap" and test.discordant is None
        assert test.difference == pytest.approx(row.delta) and row.delta < 0
        assert test.ci_low <= test.difference <= test.ci_high
        assert row.status == expected and "(paired bootstrap)" in row.note
        assert ("not significant at alpha 0.05" in row.note) == (n == 3)
    assert test.p_value < 0.001


def test_a_broken_normalisation_fails_the_gate(baseline, tmp_path, capsys):
    new = tmp_path / "broken"
    clipbench.run(_tiny(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)), suite=SUITE, cache_dir=tmp_path / "cache",
                  results_dir=new, device="cpu", progress=False)
    result = gated_compare(new, baseline / "base", max_drop=0.5)
    (row,) = result.rows
    assert result.failed and row.status == "DROP" and row.delta < -5
    test = result.tests[row.model, row.dataset, row.task, row.variant]
    assert test.p_value < 1e-6 and test.ci_high < -5
    assert row.note.startswith(f"drop of {-row.delta:.2f} [") and "p < 0.001: regression (McNemar" in row.note
    assert main(["compare", str(new), "--baseline", str(baseline / "base"), "--max-drop", "0.5"]) == 1
    assert ": regression (McNemar" in capsys.readouterr().out
    # a per-dataset band wide enough for it passes; one for another dataset does not
    band = tmp_path / "tol.yaml"
    band.write_text("datasets:\n  digits: 40\n")
    assert main(["compare", str(new), "--baseline", str(baseline / "base"), "--tolerances", str(band)]) == 0
    band.write_text("datasets:\n  cifar10: 40\n  digits: {linear_probe: 40}\ntasks:\n  zeroshot: 1.0\n")
    assert main(["compare", str(new), "--baseline", str(baseline / "base"), "--tolerances", str(band)]) == 1
    band.write_text("tasks:\n  zeroshot: 40\n")
    assert main(["compare", str(new), "--baseline", str(baseline / "base"), "--tolerances", str(band)]) == 0


def test_tolerance_file_precedence_and_bad_files(tmp_path, capsys):
    tol = Tolerances.parse({"default": 0.5, "datasets": {"digits": 1.0, "imagenet1k": {"zeroshot": 0.2}},
                            "tasks": {"linear_probe": 0.3}})
    assert tol.max_drop("digits", "zeroshot", 9) == 1.0
    assert tol.max_drop("imagenet1k", "zeroshot", 9) == 0.2
    assert tol.max_drop("imagenet1k", "linear_probe", 9) == 0.3
    assert tol.max_drop("imagenet1k", "linear_probe_4shot", 9) == 0.3  # few-shot records belong to the probe
    assert tol.max_drop("cifar10", "zeroshot", 9) == 0.5
    assert Tolerances.parse({}).max_drop("cifar10", "zeroshot", 9) == 9
    for text, message in (("datasets:\n  digits: -1\n", "datasets.digits must be a non-negative"),
                          ("dataset:\n  digits: 1\n", "unknown key 'dataset'"),
                          ("tasks: [1, 2]\n", "must be mappings"),
                          ("datasets: {digits: [\n", "not valid YAML")):
        path = tmp_path / "t.yaml"
        path.write_text(text)
        with pytest.raises(ClipbenchError, match=message):
            Tolerances.load(path)
    assert main(["compare", "a", "--baseline", "b", "--tolerances", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read tolerance file" in capsys.readouterr().err


def test_without_sample_files_the_fixed_rule_applies_and_says_so(baseline, tmp_path):
    new = tmp_path / "unlogged"
    clipbench.run(_tiny(), suite=SUITE, cache_dir=baseline / "cache", results_dir=new, device="cpu",
                  progress=False, log_samples="never")
    (record,) = read_records(new)
    assert "samples" not in record and not (new / "samples").exists()
    record["metrics"]["top1"] -= 0.4  # a small drop the fixed rule must judge
    (new / "results.jsonl").write_text(json.dumps(record) + "\n")
    result = gated_compare(new, baseline / "base", max_drop=0.25)
    (row,) = result.rows
    assert row.status == "DROP" and "fixed rule: the new record has no per-sample file" in row.note
    assert not result.tests
    assert not gated_compare(new, baseline / "base", max_drop=0.5).failed


@pytest.mark.parametrize("damage", ["missing", "truncated", "replaced", "garbage"])
def test_a_missing_or_corrupt_sample_file_falls_back_with_a_warning(baseline, noisy, damage, caplog, capsys):
    (record,) = read_records(noisy)
    path = noisy / record["samples"]["path"]
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "replaced":  # another record's (valid) file under this name, hash updated too
        other = read_records(baseline / "base")[0]
        shutil.copy(baseline / "base" / other["samples"]["path"], path)
        record["record_id"] = "0" * 32
        record["samples"]["sha256"] = sha256_file(path)
        (noisy / "results.jsonl").write_text(json.dumps(record) + "\n")
    else:
        path.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
        record["samples"]["sha256"] = sha256_file(path)
        (noisy / "results.jsonl").write_text(json.dumps(record) + "\n")
    with caplog.at_level(logging.WARNING, logger="clipbench.results.significance"):
        result = gated_compare(noisy, baseline / "base", max_drop=0.25)
    (row,) = result.rows
    assert row.status == "DROP" and "fixed rule: the new per-sample file is unusable" in row.note
    assert result.warnings and "falling back to the fixed rule" in caplog.text
    assert main(["compare", str(noisy), "--baseline", str(baseline / "base"), "--max-drop", "1"]) == 0
    assert "Warning:" in capsys.readouterr().out


def test_bad_alpha_is_bad_input(baseline, capsys):
    base = str(baseline / "base")
    assert main(["compare", base, "--baseline", base, "--alpha", "1.5"]) == 2
    assert "--alpha must be a number between 0 and 1" in capsys.readouterr().err


# --- the repository's own gate (.ci/run) ------------------------------------------------------

REPO_BASELINE = Path(__file__).resolve().parents[2] / "results" / "baseline"


def test_the_committed_baseline_has_verified_sample_files():
    from clipbench.results.comparison import load_primary
    from clipbench.results.samples import read_samples

    records = read_records(REPO_BASELINE)
    assert sorted(r["task"] for r in records) == ["linear_probe", "zeroshot", "zeroshot_retrieval"]
    for record in records:
        log = read_samples(REPO_BASELINE, record)  # path, SHA-256, record id and fingerprint all check out
        if record["task"] == "zeroshot_retrieval":  # ranks per image and caption: the bootstrap over images
            assert log.metric("mean_recall", np.ones((1, len(log))))[0] == pytest.approx(
                record["metrics"]["mean_recall"])
            continue
        assert 100 * log.correct.mean() == pytest.approx(record["metrics"]["top1"])
    # the same numbers as the leaderboard baseline it replaces
    old = load_primary(REPO_BASELINE.parent / "baseline.csv")
    new = load_primary(REPO_BASELINE)
    assert old.keys() == new.keys() and all(abs(old[k].value - new[k].value) < 1e-3 for k in old)


def test_a_broken_preprocessing_step_fails_the_repository_gate(tmp_path, capsys):
    """What .ci/run would see if someone broke the normalisation constants."""
    clipbench.run(_tiny(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)), suite="ci", cache_dir=tmp_path / "cache",
                  results_dir=tmp_path / "res", device="cpu", progress=False)
    assert main(["compare", str(tmp_path / "res"), "--baseline", str(REPO_BASELINE), "--max-drop", "0.5"]) == 1
    out = capsys.readouterr().out
    zeroshot = next(line for line in out.splitlines() if line.startswith("- clipbench-tiny / digits / zeroshot"))
    assert ": regression (McNemar" in zeroshot and "p < 0.001" in zeroshot
