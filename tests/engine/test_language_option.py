"""``language`` is one declared run option: a flag, a suite key and a ``clipbench.run`` argument, checked before
any model loads."""

from __future__ import annotations

import pytest

from clipbench import api
from clipbench.engine.runner import resolve_options
from clipbench.foundations.errors import ClipbenchError, DataError
from clipbench.suites import parse_suite


def _suite(options: dict):
    return parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot"], "options": options}, "s.yaml", "s")


def test_language_as_a_suite_key_and_an_override():
    assert resolve_options(_suite({}), {}, "cpu").language == ("en",)
    assert resolve_options(_suite({"language": ["en", "cn"]}), {}, "cpu").language == ("en", "zh")
    assert resolve_options(_suite({"language": "all"}), {"language": "ja,ar"}, "cpu").language == ("ja", "ar")
    with pytest.raises(ClipbenchError, match="option 'language' must be language codes"):
        _suite({"language": ["en", 3]})


def test_a_language_the_dataset_lacks_fails_before_the_model_loads(monkeypatch):
    import clipbench.engine.runner as runner

    monkeypatch.setattr(runner, "model_of", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(DataError, match=r"digits has no texts in ko \(Korean\): its languages are en"):
        api.run("clipbench-tiny", "smoke", language="ko", write=False, progress=False)


def test_predict_with_a_datasets_classes_in_another_language(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from clipbench.cli import main

    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(image)
    assert main(["predict", str(image), "--dataset", "digits", "--language", "ja", "--model", "clipbench-tiny",
                 "--top", "10", "--offline"]) == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in ("零", "五", "九"))
    with pytest.raises(ClipbenchError, match="--labels are used as given"):
        api.predict(str(image), labels="a,b", language="zh", model="clipbench-tiny")
