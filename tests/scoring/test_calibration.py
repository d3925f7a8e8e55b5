"""ECE, adaptive ECE, NLL and Brier against scikit-learn and against direct formulas written here."""

from __future__ import annotations

import numpy as np
import pytest

from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring.calibration import calibration, fit_temperature, log_softmax, logit_calibration

RNG = np.random.default_rng(7)
LOGITS = RNG.normal(0, 2.0, size=(200, 6))
LABELS = np.where(RNG.random(200) < 0.6, LOGITS.argmax(1), RNG.integers(0, 6, 200))


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _ece_by_hand(p, y, bins=15, adaptive=False):
    """Guo et al.'s ECE, sample by sample: bins ((m-1)/B, m/B], or B equal-count groups by sorted confidence."""
    conf, pred = p.max(1), p.argmax(1)
    if adaptive:
        groups = np.array_split(np.argsort(conf, kind="stable"), bins)
    else:
        groups = [[i for i in range(len(y)) if (m / bins < conf[i] <= (m + 1) / bins) or (m == 0 and conf[i] == 0)]
                  for m in range(bins)]
    total = 0.0
    for g in groups:
        if len(g):
            total += len(g) / len(y) * abs(np.mean(pred[g] == y[g]) - np.mean(conf[g]))
    return 100 * total


# hand-made cases: random, all correct (confident), all wrong (confident), all correct at 100%
P_RANDOM = _softmax(LOGITS)
P_RIGHT = np.tile([0.7, 0.2, 0.1], (4, 1)), np.zeros(4, int)
P_WRONG = np.tile([0.7, 0.2, 0.1], (4, 1)), np.array([1, 2, 1, 2])
P_SURE = np.eye(3)[[0, 1, 2, 0]], np.array([0, 1, 2, 0])
CASES = [(P_RANDOM, LABELS), P_RIGHT, P_WRONG, P_SURE]


@pytest.mark.parametrize("probs,labels", CASES, ids=["random", "all-correct", "all-wrong", "all-certain"])
def test_values_equal_direct_formulas(probs, labels):
    got = calibration(probs, labels)
    assert got["ece"] == pytest.approx(_ece_by_hand(probs, labels), abs=1e-9)
    assert got["ece_adaptive"] == pytest.approx(_ece_by_hand(probs, labels, adaptive=True), abs=1e-9)
    onehot = np.eye(probs.shape[1])[labels]
    assert got["brier"] == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, 1)), abs=1e-12)
    assert got["nll"] == pytest.approx(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-15, 1))))


def test_hand_values_of_the_extreme_cases():
    assert calibration(*P_RIGHT)["ece"] == pytest.approx(30.0)  # 100% right at 70% confidence
    assert calibration(*P_WRONG)["ece"] == pytest.approx(70.0)  # 0% right at 70% confidence
    sure = calibration(*P_SURE)
    assert (sure["ece"], sure["ece_adaptive"], sure["brier"]) == (0.0, 0.0, 0.0)
    assert sure["nll"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.peer
@pytest.mark.parametrize("probs,labels", CASES, ids=["random", "all-correct", "all-wrong", "all-certain"])
def test_values_equal_scikit_learn(probs, labels):
    """ECE from scikit-learn's reliability curve of top-1 correctness (weights: numpy's histogram of the
    confidences), NLL from ``log_loss``, Brier from its multi-class ``brier_score_loss``."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, log_loss

    got = calibration(probs, labels)
    conf, correct = probs.max(1), (probs.argmax(1) == labels).astype(int)
    frac_right, mean_conf = calibration_curve(correct, conf, n_bins=15, strategy="uniform")
    counts = np.histogram(conf, bins=np.linspace(0, 1, 16))[0]
    ece = np.sum(counts[counts > 0] / len(conf) * np.abs(frac_right - mean_conf))
    assert got["ece"] == pytest.approx(100 * ece, abs=1e-9)
    classes = list(range(probs.shape[1]))
    assert got["brier"] == pytest.approx(brier_score_loss(labels, probs, labels=classes), abs=1e-12)
    if probs.min() > 0:  # log_loss clips at machine epsilon, clipbench at 1e-15: equal away from 0
        assert got["nll"] == pytest.approx(log_loss(labels, probs, labels=classes), rel=1e-9)


def test_bootstrap_intervals_bracket_the_values_and_reliability_bins_add_up():
    got = calibration(P_RANDOM, LABELS, n_bootstrap=200, seed=0)
    for name in ("ece", "nll", "brier"):
        assert got["ci95"][name]["low"] <= got[name] <= got["ci95"][name]["high"]
        assert got["ci95"][name]["low"] < got["ci95"][name]["high"]
    bins = got["reliability"]
    assert len(bins) == 15 and sum(b["count"] for b in bins) == len(LABELS)
    conf = P_RANDOM.max(1)
    busiest = max(bins, key=lambda b: b["count"])
    inside = (conf > busiest["low"]) & (conf <= busiest["high"])
    assert busiest["count"] == inside.sum()
    assert busiest["confidence"] == pytest.approx(100 * conf[inside].mean())
    # the ECE interval is the resampled statistic itself: a brute-force bootstrap of 3 resamples agrees
    from clipbench.scoring.resample import draws
    d = next(draws(len(LABELS), 3, seed=0))
    brute = [_ece_by_hand(P_RANDOM[i], LABELS[i]) for i in d.index]
    small = calibration(P_RANDOM, LABELS, n_bootstrap=3, seed=0)["ci95"]["ece"]
    assert small["low"] == pytest.approx(np.quantile(brute, 0.025)) and small["high"] == pytest.approx(
        np.quantile(brute, 0.975))


def test_zero_shot_logits_are_rescaled_to_the_model_scale():
    cos = LOGITS / 10
    got = logit_calibration(100 * cos, LABELS, scale=20.0)
    assert got["scale"] == 20.0 and got["scale_source"] == "model"
    assert got["nll"] == pytest.approx(calibration(_softmax(20 * cos), LABELS)["nll"], rel=1e-9)
    fixed = logit_calibration(100 * cos, LABELS, scale=None)
    assert fixed["scale"] == 100.0 and fixed["scale_source"].startswith("fixed 100")
    z = 100 * cos  # exact NLL from logits (no clipping): logsumexp(z) - z_y
    exact = np.mean(np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1) - z[np.arange(len(LABELS)), LABELS])
    assert fixed["nll"] == pytest.approx(exact, rel=1e-9)
    assert logit_calibration(100 * cos, LABELS, scale="20")["scale"] == 100.0  # a damaged description


def test_temperature_fit_minimises_nll():
    t = fit_temperature(LOGITS, LABELS)

    def nll(temp):
        return -log_softmax(LOGITS / temp)[np.arange(len(LABELS)), LABELS].mean()

    assert nll(t) <= min(nll(t * 0.95), nll(t * 1.05))
    scaled = logit_calibration(100 * LOGITS, LABELS, scale=1.0, temperature=t)
    assert scaled["temperature"] == t and scaled["nll"] == pytest.approx(nll(t))


def test_bad_input_is_one_line():
    with pytest.raises(ClipbenchError):
        calibration(np.full((2, 3), np.nan), np.array([0, 1]))
    with pytest.raises(ClipbenchError):
        calibration(np.ones((0, 3)), np.array([], int))
