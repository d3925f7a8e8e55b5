"""The zero-shot record's calibration fields: the model's own logit scale, and the temperature variant fitted
on the validation split only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring.calibration import fit_temperature, logit_calibration
from clipbench.scoring.similarity import zeroshot_logits
from clipbench.tasks.calibration_hook import TEMPERATURE_FIELD, zeroshot_calibration

RNG = np.random.default_rng(1)
WEIGHTS = RNG.normal(size=(4, 8))
WEIGHTS /= np.linalg.norm(WEIGHTS, axis=1, keepdims=True)


class _Split(SimpleNamespace):
    def __len__(self):
        return self.n


class _Ctx:
    def __init__(self, temperature: bool, val_fails: bool = False):
        self.options = SimpleNamespace(bootstrap=0, seed=0, calibration_temperature=temperature)
        self.val = _Split(fingerprint="val-fp", n=40)
        self.val_feats = SimpleNamespace(features=RNG.normal(size=(40, 8)) + 3 * WEIGHTS[np.arange(40) % 4],
                                         labels=np.arange(40) % 4)
        self.asked = []
        self.val_fails = val_fails

    def probe_splits(self, adapter):
        if self.val_fails:
            raise ClipbenchError("digits has no train split")
        return None, self.val, None

    def features(self, model, split):
        self.asked.append(split.fingerprint)
        return self.val_feats


class _Model:
    def learned_logit_scale(self):
        return 20.0


TEST = _Split(fingerprint="test-fp", n=60)
TEST_FEATS = RNG.normal(size=(60, 8)) + 2 * WEIGHTS[np.arange(60) % 4]
TEST_LABELS = np.arange(60) % 4
LOGITS = zeroshot_logits(TEST_FEATS, WEIGHTS)


def test_the_record_uses_the_model_scale_and_no_variant_by_default():
    ctx = _Ctx(temperature=False)
    fields, notes = zeroshot_calibration(ctx, _Model(), None, TEST, LOGITS, TEST_LABELS, WEIGHTS)
    assert set(fields) == {"calibration"} and notes == [] and ctx.asked == []
    assert fields["calibration"]["scale"] == 20.0
    assert fields["calibration"]["nll"] == pytest.approx(logit_calibration(LOGITS, TEST_LABELS, 20.0)["nll"])


def test_the_temperature_is_fitted_on_the_validation_split_never_the_scored_one():
    ctx = _Ctx(temperature=True)
    fields, _ = zeroshot_calibration(ctx, _Model(), None, TEST, LOGITS, TEST_LABELS, WEIGHTS)
    variant = fields[TEMPERATURE_FIELD]
    expected = fit_temperature(zeroshot_logits(ctx.val_feats.features, WEIGHTS) * 0.2, ctx.val_feats.labels)
    assert ctx.asked == ["val-fp"] and variant["val_fingerprint"] == "val-fp" and variant["n_val"] == 40
    assert variant["temperature"] == pytest.approx(expected)
    assert variant["temperature"] != pytest.approx(fit_temperature(LOGITS * 0.2, TEST_LABELS))
    assert variant["nll"] == pytest.approx(logit_calibration(LOGITS, TEST_LABELS, 20.0, temperature=expected)["nll"])


def test_no_temperature_without_a_separate_validation_split():
    fields, notes = zeroshot_calibration(_Ctx(True, val_fails=True), _Model(), None, TEST, LOGITS, TEST_LABELS, WEIGHTS)
    assert TEMPERATURE_FIELD not in fields and "no validation split" in notes[0]
    ctx = _Ctx(True)
    ctx.val = _Split(fingerprint="test-fp", n=60)  # a dataset scored on its val split: it is the scored split
    fields, notes = zeroshot_calibration(ctx, _Model(), None, TEST, LOGITS, TEST_LABELS, WEIGHTS)
    assert TEMPERATURE_FIELD not in fields and "is the scored split" in notes[0] and ctx.asked == []
