"""The bad-input catalogue through the CLI: every case is one line on stderr, exit code 2, no traceback
(and ``--debug`` / ``CLIPBENCH_DEBUG=1`` show the traceback). Cases that test_cli_engine already
checks the same way (unknown suite ``smok``, dataset ``digitz``, ``--batch-size 0``, ``--seeds``
without few-shot, ``--fewshot-k`` on a zero-shot suite, fp16 on CPU) are not repeated here.
No CLI argument takes a metric name (each dataset fixes its primary metric), so there is no
unknown-metric case.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from _datasets_fixtures import class_tree
from _engine_fixtures import write_tiny_clip
from _fault_fixtures import SlowServer

import clipbench.models.loading as loading
from clipbench.cli import main
from clipbench.foundations.registry import Registry
from clipbench.models.checkpoints import CheckpointInfo


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("catalogue")
    ckpt = write_tiny_clip(base / "tiny.pt")
    state = torch.load(ckpt)
    torch.save({"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}, base / "resnet_head.pt")
    inf = {k: v.clone() for k, v in state.items()}
    inf["visual.proj"].fill_(1e38)  # fp32 overflow: the image features become inf
    torch.save(inf, base / "overflow.pt")
    class_tree(base / "pets", {"cat": 3, "dog": 3})
    class_tree(base / "broken", {"cat": 3, "dog": 3})
    (base / "broken" / "dog" / "img_999.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (base / "empty" / "cat").mkdir(parents=True)
    (base / "empty" / "dog").mkdir(parents=True)
    class_tree(base / "trainonly" / "train", {"cat": 2, "dog": 2})
    (base / "malformed.yaml").write_text("version: 1\ndatasets: [digits\ntasks: [zeroshot]\n")
    (base / "unknown_key.yaml").write_text("version: 1\ndatasets: [digits]\ntasks: [zeroshot]\noptinos: {}\n")
    (base / "unknown_task.yaml").write_text("version: 1\ndatasets: [digits]\ntasks: [zeroshoot]\n")
    newer = base / "newer"
    newer.mkdir()
    (newer / "results.jsonl").write_text(json.dumps({
        "schema_version": 99, "model": "m", "dataset": "d", "task": "zeroshot", "primary_metric": "top1",
        "metrics": {"top1": 50.0}}) + "\n")
    return base


def _run(base, *extra, model=None, suite="zeroshot", device="cpu"):
    return ["run", "--model", str(model or base / "tiny.pt"), "--suite", suite, "--device", device,
            "--no-progress", "--workers", "0", "--cache-dir", str(base / "cache"),
            "--results-dir", str(base / "res"), *extra]


# case id -> (argv builder, a fragment the one line must contain)
CATALOGUE = {
    "unknown model, close matches": (lambda b: _run(b, "--dataset", "digits", model="ViT-B/61"),
                                     "unknown model 'ViT-B/61'; did you mean ViT-B/16"),
    "unknown model backend": (lambda b: _run(b, "--dataset", "digits", model="timm:vit"), "unknown model backend"),
    "unknown dataset, close matches": (lambda b: _run(b, "--dataset", "cifar11"), "did you mean cifar10"),
    "unknown suite, close match": (lambda b: ["run", "--suite", "zeroshott"], "did you mean zeroshot"),
    "unknown download name": (lambda b: ["download", "ViT-B/61", "--cache-dir", str(b / "cache")],
                              "unknown dataset or model 'ViT-B/61'; did you mean ViT-B/16"),
    "malformed suite YAML": (lambda b: ["run", "--suite", str(b / "malformed.yaml")], "malformed YAML line 3"),
    "unknown suite key": (lambda b: ["run", "--suite", str(b / "unknown_key.yaml")],
                          "unknown key 'optinos'; did you mean options?"),
    "unknown suite task": (lambda b: ["run", "--suite", str(b / "unknown_task.yaml")], "unknown task 'zeroshoot'"),
    "not a CLIP state dict": (lambda b: _run(b, "--dataset", "digits", model=b / "resnet_head.pt"),
                              "not an OpenAI CLIP state dict: missing keys"),
    "missing checkpoint file": (lambda b: _run(b, "--dataset", "digits", model=b / "nope.pt"), "does not exist"),
    "data root missing": (lambda b: _run(b, "--dataset", "cifar10", "--data-root", str(b / "nowhere")),
                          "data root"),
    "data root lacks the dataset": (lambda b: _run(b, "--dataset", "cifar10", "--data-root", str(b)),
                                    "clipbench download cifar10"),
    "dataset lacks the split": (lambda b: _run(b, "--dataset", f"folder:{b / 'trainonly'}"),
                                "has no test or val split"),
    "corrupt image": (lambda b: _run(b, "--dataset", f"folder:{b / 'broken'}"), "corrupt image"),
    "corrupt image in a worker": (lambda b: _run(b, "--dataset", f"folder:{b / 'broken'}", "--workers", "1"),
                                  "corrupt image"),
    "empty dataset": (lambda b: _run(b, "--dataset", f"folder:{b / 'empty'}"), "no images under"),
    "dataset folder missing": (lambda b: _run(b, "--dataset", f"folder:{b / 'gone'}"), "does not exist"),
    "NaN/Inf features": (lambda b: _run(b, "--dataset", f"folder:{b / 'pets'}", model=b / "overflow.pt"),
                         "produced NaN/Inf image features"),
    "conflicting flags: probe solver on zero-shot": (lambda b: _run(b, "--solver", "sklearn"),
                                                     "--solver applies to the linear probe"),
    "negative workers": (lambda b: _run(b, "--workers", "-1"), "--workers must be 'auto' or an integer from 0"),
    # issue 18: these were internal errors with exit 1 (the gate's "regression" code)
    "negative seed": (lambda b: _run(b, "--dataset", f"folder:{b / 'pets'}", "--seed", "-1"),
                      "seed must be an integer from 0 to 2**32-1, got -1"),
    "negative few-shot seeds": (lambda b: _run(b, "--dataset", f"folder:{b / 'pets'}", "--fewshot-k", "1",
                                               "--seeds=-1,-2", suite="linear_probe"),
                                "seeds must be a non-empty list of integers from 0 to 2**32-1"),
    "meta device": (lambda b: _run(b, "--dataset", f"folder:{b / 'pets'}", device="meta"),
                    "the meta device holds no data"),
    "predict on the meta device": (lambda b: ["predict", str(b / "pets" / "cat" / "img_000.png"), "--labels", "a,b",
                                              "--model", str(b / "tiny.pt"), "--device", "meta"],
                                   "the meta device holds no data"),
    "predict template with another placeholder": (
        lambda b: ["predict", str(b / "pets" / "cat" / "img_000.png"), "--labels", "a,b", "--model",
                   str(b / "tiny.pt"), "--template", "a {x} of {c}"], "has placeholder(s) {x}; only {c}"),
    "predict template with a lone brace": (
        lambda b: ["predict", str(b / "pets" / "cat" / "img_000.png"), "--labels", "a,b", "--model",
                   str(b / "tiny.pt"), "--template", "a {c} }"], "not a valid prompt template"),
    "newer results schema: run": (lambda b: [*_run(b, "--dataset", f"folder:{b / 'pets'}")[:-2], "--results-dir",
                                             str(b / "newer")], "schema_version 99"),
    "newer results schema: compare": (lambda b: ["compare", str(b / "newer"), "--baseline", str(b / "newer")],
                                      "schema_version 99"),
    "newer results schema: report": (lambda b: ["report", str(b / "newer"), "--out", str(b / "report")],
                                     "schema_version 99"),
}


@pytest.mark.parametrize("case", list(CATALOGUE))
def test_bad_input_is_one_line_exit_2(inputs, capsys, case):
    build, fragment = CATALOGUE[case]
    capsys.readouterr()
    code = main([str(a) for a in build(inputs)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("clipbench: error:") and err.count("\n") == 1, err
    assert fragment in err and "Traceback" not in err


def test_newer_schema_run_appends_nothing(inputs, capsys):
    before = (inputs / "newer" / "results.jsonl").read_bytes()
    assert main(CATALOGUE["newer results schema: run"][0](inputs)) == 2
    assert (inputs / "newer" / "results.jsonl").read_bytes() == before


def test_checkpoint_with_wrong_hash_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    good = write_tiny_clip(tmp_path / "good.pt").read_bytes()
    server = SlowServer({"/tampered.pt": good + b"tampered"})
    server.slow = False
    registry: Registry[CheckpointInfo] = Registry("model")
    registry.register("Tiny", CheckpointInfo(name="Tiny", sha256=hashlib.sha256(good).hexdigest(),
                                             url=server.url("/tampered.pt")))
    monkeypatch.setattr(loading, "MODELS", registry)
    try:
        code = main(["run", "--model", "Tiny", "--suite", "zeroshot", "--dataset", "digits", "--device", "cpu",
                     "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "res")])
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "has SHA-256" in err and "expected" in err and "discarded" in err
    assert not (tmp_path / "cache" / "checkpoints" / "tampered.pt").exists()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback(inputs, capsys, monkeypatch, how):
    argv = CATALOGUE["corrupt image"][0](inputs)
    if how == "flag":
        argv = ["--debug", *argv]
    else:
        monkeypatch.setenv("CLIPBENCH_DEBUG", "1")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "open_rgb" in err
    assert err.rstrip().splitlines()[-1].startswith("clipbench: error: corrupt image")
