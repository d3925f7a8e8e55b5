"""clipbench-tiny's trainer: deterministic for a seed, CLIP's loss, OpenAI checkpoint format, the CLI."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from clipbench.cli import main
from clipbench.foundations.fileio import sha256_file
from clipbench.models import load_model
from clipbench.models.architecture import CLIP
from clipbench.training import tiny

SMALL = tiny.TrainSettings(seed=0, batch_size=32, max_steps=4)


@pytest.fixture(scope="module")
def digits_train():
    """(images, labels, caption tokens) of the digits train split, as the trainer sees them."""
    return tiny.load_training_data()


def _small(digits_train, n=96):
    images, labels, tokens = digits_train
    return images[:n], labels[:n], tokens


def test_training_data_is_the_digits_train_split_with_template_captions(digits_train):
    from clipbench.datasets import get_dataset

    images, labels, tokens = digits_train
    adapter = get_dataset("digits")
    assert images.shape[1:] == (3, 32, 32)
    assert len(labels) == len(adapter.load_split("train", None).labels)
    assert sorted(set(labels.tolist())) == list(range(10))
    prompts = adapter.class_prompts()
    assert tokens.shape == (10, len(prompts[0]), 77)
    assert torch.equal(tokens[7, 0], tiny.tokenize(prompts[7][0])[0])


def test_same_seed_gives_identical_weights_and_bytes(digits_train):
    first = tiny.train(*_small(digits_train), settings=SMALL, progress=False)
    second = tiny.train(*_small(digits_train), settings=SMALL, progress=False)
    assert first.steps == second.steps == 4
    assert first.state_dict.keys() == second.state_dict.keys()
    for key, value in first.state_dict.items():
        assert torch.equal(value, second.state_dict[key]), key
    assert tiny.checkpoint_bytes(first.state_dict) == tiny.checkpoint_bytes(second.state_dict)
    assert first.epoch_losses == second.epoch_losses


@pytest.mark.slow
def test_the_compact_token_table_trains_to_the_bytes_of_the_full_table(digits_train):
    """Training updates only the token rows the captions use; the other rows' AdamW update is exactly
    zero, so the full table (the recipe as written) gives the same weights, bytes and losses."""
    settings = tiny.settings_with(**{**SMALL.__dict__, "max_steps": 40, "max_shift": 1})
    compact = tiny.train(*digits_train, settings=settings, progress=False)
    full = tiny.train(*digits_train, settings=settings, progress=False, full_vocabulary=True)
    assert compact.steps == full.steps == 40
    assert compact.epoch_losses == full.epoch_losses
    assert tiny.checkpoint_bytes(compact.state_dict) == tiny.checkpoint_bytes(full.state_dict)
    init = tiny.CLIP(tiny.TINY_CONFIG)
    tiny.init_parameters(init, torch.Generator().manual_seed(SMALL.seed))
    moved = (compact.state_dict["token_embedding.weight"] != init.token_embedding.weight.half()).any(dim=1)
    assert 10 < int(moved.sum()) < 500  # only the captions' rows moved; the rest are the initial draws


def test_a_different_seed_gives_different_weights(digits_train):
    base = tiny.train(*_small(digits_train), settings=SMALL, progress=False)
    other = tiny.train(*_small(digits_train), settings=tiny.settings_with(**{**SMALL.__dict__, "seed": 1}), progress=False)
    assert not torch.equal(base.state_dict["visual.conv1.weight"], other.state_dict["visual.conv1.weight"])


def test_training_leaves_global_torch_settings_as_they_were(digits_train):
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    tiny.train(*_small(digits_train, 32), settings=tiny.settings_with(batch_size=32, max_steps=1), progress=False)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_loss_is_the_papers_symmetric_cross_entropy(digits_train):
    images, labels, tokens = digits_train
    model = CLIP(tiny.TINY_CONFIG)
    tiny.init_parameters(model, torch.Generator().manual_seed(3))
    batch_images, batch_tokens = images[:8], tokens[labels[:8], 0]
    loss = tiny.contrastive_loss(model, batch_images, batch_tokens)
    with torch.no_grad():
        i_e = F.normalize(model.encode_image(batch_images), dim=1)
        t_e = F.normalize(model.encode_text(batch_tokens), dim=1)
        logits = (i_e @ t_e.T) * math.exp(model.logit_scale.item())
        loss_i = -torch.log_softmax(logits, dim=1).diagonal().mean()
        loss_t = -torch.log_softmax(logits, dim=0).diagonal().mean()
    assert loss.item() == pytest.approx(((loss_i + loss_t) / 2).item(), rel=1e-5)


def test_initialisation_is_seeded_and_sets_every_tensor():
    models = []
    for _ in range(2):
        model = CLIP(tiny.TINY_CONFIG)
        tiny.init_parameters(model, torch.Generator().manual_seed(0))
        models.append(model)
    a, b = (m.state_dict() for m in models)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.isfinite(v).all() for v in a.values())
    assert a["logit_scale"].item() == pytest.approx(math.log(1 / 0.07))
    assert a["token_embedding.weight"].std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.equal(a["ln_final.weight"], torch.ones(64))
    assert torch.equal(a["transformer.resblocks.0.attn.in_proj_bias"], torch.zeros(192))


def test_saved_checkpoint_is_an_fp16_state_dict_the_ordinary_loader_reads(digits_train, tmp_path):
    result = tiny.train(*_small(digits_train, 32), settings=tiny.settings_with(batch_size=32, max_steps=1), progress=False)
    path = tmp_path / "tiny.pt"
    sha = tiny.save_checkpoint(result.state_dict, path)
    assert sha == sha256_file(path)
    saved = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in saved.values())
    model = load_model(path)
    assert model.module.config == tiny.TINY_CONFIG
    assert model.weights_sha256 == sha
    for key, value in result.state_dict.items():
        assert torch.equal(model.module.state_dict()[key], value.float()), key


def test_settings_reject_nonsense():
    from clipbench.foundations.errors import ClipbenchError

    with pytest.raises(ClipbenchError, match="epochs"):
        tiny.settings_with(epochs=0)
    with pytest.raises(ClipbenchError, match="steps"):
        tiny.settings_with(max_steps=0)


def test_cli_train_tiny_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "sub" / "tiny.pt"
    assert main(["train-tiny", "--steps", "1", "--seed", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"sha256 {sha256_file(out)}" in printed
    assert "after 1 steps" in printed
    assert load_model(out).module.config == tiny.TINY_CONFIG


def test_cli_train_tiny_bad_arguments_exit_2_with_one_line(tmp_path, capsys):
    assert main(["train-tiny", "--epochs", "0", "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epochs must be at least 1" in err[0]
    assert not (tmp_path / "x.pt").exists()
