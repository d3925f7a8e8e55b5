"""A rerun served from the caches: scored without torch, with the numbers of the run that filled them.

The pieces: the model's remembered description (``clipbench.models.description``), numpy scoring
(zero-shot logits, class weights, the per-sample file) and what records say about torch
(``clipbench.foundations.torch_env``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from _cli_probe import loaded_after, source_env

from clipbench.models.description import DescribedModel, description_path, recall
from clipbench.models.loading import load_model
from clipbench.models.registry import MODELS

ZEROSHOT_SUITE = ("version: 1\nname: zs\nmodel: clipbench-tiny\ndatasets: [digits]\ntasks: [zeroshot]\n"
                  "options: {offline: true, batch_size: 128, workers: 0}\n")

def _records(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "results.jsonl").read_text().splitlines()]


@pytest.mark.subprocess
def test_a_rerun_from_the_caches_scores_without_torch_and_equals_the_cold_run(tmp_path):
    suite = tmp_path / "zs.yaml"
    suite.write_text(ZEROSHOT_SUITE)
    argv = ("run", "--suite", str(suite), "--device", "cpu", "--no-progress", "--cache-dir", str(tmp_path / "c"))
    cold = loaded_after(*argv, "--results-dir", str(tmp_path / "cold"), timeout=300)
    assert cold == {"code": 0, "heavy": ["torch"], "others": [], "pandas": False}  # it encoded images and prompts
    warm = loaded_after(*argv, "--results-dir", str(tmp_path / "warm"), timeout=300)
    assert warm == {"code": 0, "heavy": [], "others": [], "pandas": False}
    threads = loaded_after(*argv, "--threads", "2", "--results-dir", str(tmp_path / "threads"), timeout=300)
    assert threads == {"code": 0, "heavy": [], "others": [], "pandas": False}  # a thread count alone loads no torch

    (a,), (b,) = _records(tmp_path / "cold"), _records(tmp_path / "warm")
    for field in ("metrics", "ci95", "model_identity", "weights_sha256", "preprocess_id", "model_family",
                  "dataset_fingerprint", "n_samples", "prompt_hash", "extraction", "device"):
        assert a[field] == b[field], field
    assert b["versions"] == a["versions"]  # torch's version read from its version.py, as torch.__version__ says
    assert a["torch_threads"] == torch.get_num_threads() and b["torch_threads"] is None  # nothing ran on torch
    assert b["cost"]["images_extracted"] == 0
    (c,) = _records(tmp_path / "threads")
    assert c["metrics"] == a["metrics"] and c["torch_threads"] is None
    tables = [pq.read_table(tmp_path / run / r["samples"]["path"]) for run, r in (("cold", a), ("warm", b))]
    assert tables[0].replace_schema_metadata().equals(tables[1].replace_schema_metadata())  # the same predictions


@pytest.mark.subprocess
def test_a_thread_count_is_applied_when_torch_is_first_imported_and_undone_after():
    probe = ("import json, sys; from clipbench.foundations.threads import torch_threads\n"
             "with torch_threads(1):\n"
             "    before = 'torch' in sys.modules\n"
             "    import torch\n"
             "    inside = torch.get_num_threads()\n"
             "    with torch_threads(3):\n"
             "        nested = torch.get_num_threads()\n"
             "    back = torch.get_num_threads()\n"
             "print(json.dumps([before, inside, nested, back, torch.get_num_threads()]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env=source_env(), check=True).stdout
    before, inside, nested, back, after = json.loads(out)
    assert before is False and inside == 1 and nested == 3 and back == 1
    default = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                             capture_output=True, text=True, timeout=120, env=source_env(), check=True).stdout
    assert after == int(default)  # torch's own default once the block ends


def test_the_described_model_is_built_when_features_are_missing(tmp_path):
    """Features the cache lacks are extracted by the real model, built on demand: the same bits as a cold run."""
    from clipbench import api
    from clipbench.features.store import FeatureKey, FeatureStore

    def run(cache: str, limit: int) -> list[dict]:
        return api.run("clipbench-tiny", suite="smoke", cache_dir=tmp_path / cache, device="cpu", progress=False,
                       results_dir=tmp_path / f"results-{cache}-{limit}", limit=limit)

    run("a", 40)  # describes the model
    assert recall(tmp_path / "a" / "models", MODELS.get("clipbench-tiny").sha256) is not None
    lazy, fresh = run("a", 60), run("b", 60)  # new splits: the described model must build to extract them
    assert [r["metrics"] for r in lazy] == [r["metrics"] for r in fresh]
    assert [r["cost"]["images_extracted"] for r in lazy] == [r["cost"]["images_extracted"] for r in fresh] != [0, 0]
    stores = {c: FeatureStore(tmp_path / c / "features") for c in ("a", "b")}
    keys = [FeatureKey(**e.key) for e in stores["b"].entries()]
    assert len(keys) == 3  # train, val and test of --limit 60
    for key in keys:
        np.testing.assert_array_equal(stores["a"].load(key).features, stores["b"].load(key).features)


def test_load_model_describes_a_checkpoint_only_after_building_it(tmp_path):
    info = MODELS.get("clipbench-tiny")
    cache = tmp_path / "cache"
    first = load_model("clipbench-tiny", cache_dir=cache, lazy=True)
    assert not isinstance(first, DescribedModel)  # nothing remembered yet: built, then described
    assert recall(cache / "models", info.sha256) is not None
    assert not isinstance(load_model("clipbench-tiny", cache_dir=cache), DescribedModel)  # only when asked

    described = load_model("clipbench-tiny", cache_dir=cache, lazy=True)
    assert isinstance(described, DescribedModel) and described._model is None
    for attr in ("name", "identity", "weights_sha256", "family", "image_resolution", "embed_dim", "context_length",
                 "preprocess_id", "device_type"):
        assert getattr(described, attr) == getattr(first, attr), attr
    assert described.num_params() == first.num_params()
    assert described._model is None  # the description answered all of that
    tokens = first.tokenize(["a photo of a digit"])
    torch.testing.assert_close(described.encode_text(tokens), first.encode_text(tokens), rtol=0, atol=0)
    assert described._model is not None and described.device == first.device
    assert described.config == first.config  # anything else: the built model's


def test_a_description_is_used_only_for_the_same_bytes_and_version(tmp_path):
    source = MODELS.get("clipbench-tiny").package_path()
    checkpoint, cache = tmp_path / "tiny.pt", tmp_path / "cache"
    shutil.copy(source, checkpoint)
    built = load_model(str(checkpoint), cache_dir=cache, lazy=True)
    path = description_path(cache / "models", built.weights_sha256)
    assert isinstance(load_model(str(checkpoint), cache_dir=cache, lazy=True), DescribedModel)

    state = torch.load(checkpoint, weights_only=True)
    state["logit_scale"] = state["logit_scale"] + 1  # other bytes: hashed again, so not described
    torch.save(state, checkpoint)
    assert not isinstance(load_model(str(checkpoint), cache_dir=cache, lazy=True), DescribedModel)

    shutil.copy(source, checkpoint)
    remembered = json.loads(path.read_text())
    for broken in ({**remembered, "clipbench": "0.0.0"}, {**remembered, "schema": 99}, "not json"):
        path.write_text(broken if isinstance(broken, str) else json.dumps(broken))
        assert not isinstance(load_model(str(checkpoint), cache_dir=cache, lazy=True), DescribedModel)
    assert recall(cache / "models", built.weights_sha256) is not None  # the last load described it afresh


@pytest.mark.subprocess
def test_torch_env_answers_as_torch_does_without_loading_it():
    probe = ("import json, sys; from clipbench.foundations import torch_env as t; "
             "out = {'version': t.version(), 'threads': t.intra_op_threads(), 'possible': t.gpu_possible()}; "
             "out['device'] = t.default_device() if not out['possible'] else None; "
             "out['loaded'] = 'torch' in sys.modules; print(json.dumps(out))")
    out = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                                    env=source_env(), check=True).stdout)
    assert out["version"] == torch.__version__ and out["threads"] is None and out["loaded"] is False
    if out["possible"]:
        pytest.skip("a GPU device node exists here, so default_device asks torch (checked in-process below)")
    assert out["device"] == "cpu" == ("cuda" if torch.cuda.is_available() else "cpu")


def test_default_device_asks_torch_where_a_gpu_could_be(monkeypatch):
    from clipbench.foundations import torch_env

    monkeypatch.setattr(torch_env, "GPU_DEVICE_NODES", (__file__,))  # "a device node exists"
    assert torch_env.gpu_possible()
    assert torch_env.default_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch_env.intra_op_threads() == torch.get_num_threads()
    assert torch_env.device_type("cuda:1") == "cuda" and torch_env.device_type("cpu") == "cpu"


def test_numpy_scoring_matches_the_torch_formulas():
    """The class weights and logits moved from torch to numpy: the same numbers to float32 rounding."""
    from clipbench.features.text_classifier import class_weights
    from clipbench.scoring.similarity import LOGIT_SCALE, zeroshot_logits

    rng = np.random.default_rng(0)
    prompts = [["a"] * n for n in (1, 3, 80, 7)]
    emb = torch.from_numpy(rng.normal(size=(91, 32)).astype(np.float32))
    unit = emb / emb.norm(dim=-1, keepdim=True)
    owner = torch.tensor([c for c, p in enumerate(prompts) for _ in p])
    sums = torch.zeros(len(prompts), 32).index_add_(0, owner, unit)
    means = sums / torch.bincount(owner).unsqueeze(1).float()
    reference = means / means.norm(dim=-1, keepdim=True)
    weights = class_weights(emb.numpy(), prompts)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, reference.numpy(), rtol=0, atol=2e-7)

    feats = torch.from_numpy(rng.normal(size=(500, 32)).astype(np.float32))
    expected = LOGIT_SCALE * (feats / feats.norm(dim=-1, keepdim=True)) @ torch.from_numpy(weights).T
    logits = zeroshot_logits(feats.numpy(), weights, chunk=128)
    assert logits.dtype == np.float32 and logits.shape == (500, 4)
    np.testing.assert_allclose(logits, expected.numpy(), rtol=0, atol=2e-5)
    assert (logits.argmax(1) == expected.numpy().argmax(1)).all()
    np.testing.assert_array_equal(zeroshot_logits(feats, torch.from_numpy(weights), chunk=128), logits)  # tensors
    with pytest.raises(Exception, match="prompt features"):
        class_weights(emb.numpy()[:5], prompts)


def test_top_k_orders_ties_by_class_index():
    from clipbench.scoring.similarity import top_k

    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(300, 11)).astype(np.float32)  # many ties, also at the k-th place
    best = top_k(scores, 5, rows=64)
    best_scores = np.take_along_axis(scores, best, axis=1)
    reference = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(best, reference)
    np.testing.assert_array_equal(best_scores, np.take_along_axis(scores, reference, axis=1))
    assert (best[:, 0] == scores.argmax(axis=1)).all()
    one = top_k(scores, 11)
    np.testing.assert_array_equal(one, np.argsort(-scores, axis=1, kind="stable"))


@pytest.mark.subprocess
def test_arrow_columns_round_trip_without_pandas():
    probe = ("import sys, numpy as np; from clipbench.scoring.samples.classification import arrow_column, build_table; "
             "v = [np.array([3, -1, 7], np.int64), np.array([0.5, -2.0, 1e-8], np.float32), "
             "np.array([True, False, True, True, False, False, True, True, True])]; "
             "columns = [arrow_column(x) for x in v]; "
             "t = build_table(np.random.default_rng(0).normal(size=(9, 6)).astype(np.float32), np.arange(9) % 6, "
             "'logits'); print('pandas' in sys.modules); "  # reading back may import it; building must not
             "assert t.num_rows == 9 and all((c.to_numpy(zero_copy_only=False) == x).all() for c, x in zip(columns, v))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=source_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
