"""Calibration fields of the zero-shot record (``clipbench.scoring.calibration``): at the model's own learned
logit scale, and with ``--calibration-temperature`` a separate, named variant whose temperature is fitted
on the validation split (the probe's: the dataset's own, else carved from train), never on the scored split.
"""

from __future__ import annotations

import logging

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.option import Option, a_bool

log = logging.getLogger(__name__)

#: the record field of the fitted-temperature variant
TEMPERATURE_FIELD = "calibration_temperature_val"

CALIBRATION_OPTIONS = (
    Option("calibration_temperature", False, a_bool, "true or false",
           "zero-shot: also report calibration after a softmax temperature fitted on the validation split "
           "(a separate record field; extracts the validation split's features)", bool, owner="zeroshot"),
)


def validation_split(ctx, adapter, split):
    """(the split a temperature is fitted on, or None; the note when there is none). None without
    ``--calibration-temperature``."""
    if not getattr(ctx.options, "calibration_temperature", False):
        return None, None
    try:
        _, val, _ = ctx.probe_splits(adapter)
    except ClipbenchError as exc:
        return None, f"no temperature fitted: no validation split ({exc})"
    if val.fingerprint == split.fingerprint or len(val) == 0:
        return None, "no temperature fitted: the validation split is the scored split"
    return val, None


def zeroshot_calibration(ctx, model, adapter, split, logits, labels, weights) -> tuple[dict, list[str]]:
    """The record fields ``calibration`` (and, when asked for, ``calibration_temperature_val``) and notes."""
    from clipbench.scoring.calibration import fit_temperature, logit_calibration
    from clipbench.scoring.similarity import LOGIT_SCALE, zeroshot_logits

    o = ctx.options
    scale = model.learned_logit_scale() if hasattr(model, "learned_logit_scale") else None
    fields = {"calibration": logit_calibration(logits, labels, scale, o.bootstrap, o.seed)}
    if not getattr(o, "calibration_temperature", False):
        return fields, []
    used = fields["calibration"]["scale"]
    val, note = validation_split(ctx, adapter, split)
    if val is None:
        return fields, [note]
    feats = ctx.features(model, val)
    val_logits = zeroshot_logits(feats.features, weights) * (used / LOGIT_SCALE)
    temperature = fit_temperature(val_logits, feats.labels)
    tempered = logit_calibration(logits, labels, scale, o.bootstrap, o.seed, temperature=temperature)
    fields[TEMPERATURE_FIELD] = {**tempered, "fitted_on": "val", "val_fingerprint": val.fingerprint,
                                 "n_val": len(val)}
    return fields, []
