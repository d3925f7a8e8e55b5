"""``clipbench.clip`` keeps OpenAI's conventions that scripts rely on (issue 28, item 16): ``tokenize`` returns
int32 ids, and ``preprocess.transforms`` lists torchvision's steps, which composed give the same pixels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _backends_fixtures import random_image
from torchvision.transforms import Compose

import clipbench
from clipbench import clip

with warnings.catch_warnings():  # openai-clip imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import clip as reference_clip


@pytest.mark.peer
def test_tokenize_dtype_is_openais_and_encode_text_takes_it():
    texts = ["a photo of a dog.", "3 CATS & café", ""]
    ours, theirs = clip.tokenize(texts), reference_clip.tokenize(texts)
    assert ours.dtype == theirs.dtype == torch.int32 and torch.equal(ours, theirs)
    assert clipbench.tokenize(texts).dtype == torch.int64  # clipbench's own API keeps its ids
    model, _ = clip.load("clipbench-tiny", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(ours), model.encode_text(ours.long()), rtol=0, atol=0)


@pytest.mark.peer
def test_preprocess_transforms_are_openais_steps_with_the_same_pixels():
    _, preprocess = clip.load("clipbench-tiny", device="cpu")
    ours, theirs = preprocess.transforms, reference_clip.clip._transform(32).transforms
    assert [type(t).__name__ for t in ours[:2] + ours[3:]] == [type(t).__name__ for t in theirs[:2] + theirs[3:]]
    assert callable(ours[2]) and ours[0].size == theirs[0].size and ours[0].interpolation == theirs[0].interpolation
    assert ours[1].size == theirs[1].size and (ours[-1].mean, ours[-1].std) == (theirs[-1].mean, theirs[-1].std)
    for image in (random_image(50, 37, seed=1), random_image(20, 64, seed=2, mode="L"), random_image(32, 32, seed=3)):
        expected = preprocess(image).numpy()
        np.testing.assert_array_equal(Compose(preprocess.transforms)(image).numpy(), expected)
        np.testing.assert_array_equal(Compose(theirs)(image).numpy(), expected)
