"""ARO's COCO-Order / Flickr30k-Order: the four perturbations on hand-made captions with a dictionary tagger,
ARO's caption normalisation, the adapters on files in their real on-disk layout (Karpathy JSON + images)
end to end through image_caption_selection, and the one-line error when spaCy is missing."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _datasets_fixtures import write_image
from _engine_fixtures import write_tiny_clip

from clipbench import api
from clipbench.cli import main
from clipbench.datasets import aro_order, get_dataset
from clipbench.datasets.aro_order import (
    INSTALL,
    order_items,
    perturbed_captions,
    pre_caption,
    shuffle_allbut_nouns_and_adj,
    shuffle_nouns_and_adj,
    shuffle_trigrams,
    shuffle_within_trigrams,
    tokenize,
    trigrams,
)
from clipbench.foundations.errors import DataError

#: universal tags of every word the hand-made captions use (a tagger whose answers are known)
TAGS = {"a": "DET", "the": "DET", "an": "DET", "young": "ADJ", "man": "NOUN", "rides": "VERB", "brown": "ADJ",
        "horse": "NOUN", "near": "ADP", "old": "ADJ", "red": "ADJ", "barn": "NOUN", ".": "PUNCT", ",": "PUNCT",
        "dog": "NOUN", "sits": "VERB", "on": "ADP", "bench": "NOUN", "and": "CCONJ", "cat": "NOUN", "sleeps": "VERB",
        "Paris": "PROPN", "in": "ADP", "is": "AUX", "street": "NOUN", "'s": "PART", "dogs": "NOUN", "bench.": "X"}


class DictTagger:
    """Tags from ``TAGS`` (case-insensitive; unknown words are X); counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def tag(self, words):
        self.calls += 1
        return [TAGS.get(w, TAGS.get(w.lower(), "X")) for w in words]


WORDS = "A young man rides a brown horse near the old red barn .".split()  # 13 words: 4 trigrams + 1 left over
TAGGED = DictTagger().tag(WORDS)
NOUN_ADJ = {i for i, t in enumerate(TAGGED) if t in ("NOUN", "PROPN", "ADJ")}


def _splits_into(out: list[str], grams: list[list[str]]) -> bool:
    """Whether ``out`` is the concatenation of ``grams`` in some order."""
    if not out:
        return not grams
    return any(out[:len(g)] == g and _splits_into(out[len(g):], grams[:k] + grams[k + 1:]) for k, g in enumerate(grams))


def test_trigrams_keep_the_leftover_words_last():
    assert trigrams(list("abcdefg")) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert trigrams(list("abcde")) == [["a", "b", "c"], ["d", "e"]]
    assert trigrams(list("abc")) == [["a", "b", "c"]] and trigrams([]) == []


def test_shuffle_nouns_and_adj_permutes_exactly_those_positions():
    nouns = [i for i, t in enumerate(TAGGED) if t == "NOUN"]
    adjectives = [i for i, t in enumerate(TAGGED) if t == "ADJ"]
    seen = set()
    for seed in range(40):
        out = shuffle_nouns_and_adj(WORDS, TAGGED, np.random.default_rng(seed))
        assert Counter(out) == Counter(WORDS)
        assert all(out[i] == WORDS[i] for i in range(len(WORDS)) if i not in NOUN_ADJ)
        assert sorted(out[i] for i in nouns) == sorted(WORDS[i] for i in nouns)  # nouns among noun positions
        assert sorted(out[i] for i in adjectives) == sorted(WORDS[i] for i in adjectives)  # adjectives among theirs
        seen.add(tuple(out))
    assert len(seen) > 10  # 3! x 4! orders: the seeds do reach many of them


def test_shuffle_allbut_nouns_and_adj_permutes_exactly_the_other_positions():
    others = [i for i in range(len(WORDS)) if i not in NOUN_ADJ]
    seen = set()
    for seed in range(40):
        out = shuffle_allbut_nouns_and_adj(WORDS, TAGGED, np.random.default_rng(seed))
        assert Counter(out) == Counter(WORDS)
        assert all(out[i] == WORDS[i] for i in NOUN_ADJ)
        assert sorted(out[i] for i in others) == sorted(WORDS[i] for i in others)
        seen.add(tuple(out))
    assert len(seen) > 10
    assert shuffle_allbut_nouns_and_adj(["red", "dog"], ["ADJ", "NOUN"], np.random.default_rng(0)) == ["red", "dog"]
    with pytest.raises(ValueError, match="2 tags for 3 words"):
        shuffle_nouns_and_adj(["a", "b", "c"], ["X", "X"], np.random.default_rng(0))


@pytest.mark.parametrize("n", [13, 12, 11, 2])
def test_trigram_shuffles(n):
    words = [f"w{i}" for i in range(n)]
    grams = trigrams(words)
    within, across = set(), set()
    for seed in range(30):
        out = shuffle_within_trigrams(words, np.random.default_rng(seed))
        assert Counter(out) == Counter(words)
        # every trigram stays in place (the last one's 1-2 words at the end) and only its words move
        assert [sorted(g) for g in trigrams(out)] == [sorted(g) for g in grams]
        within.add(tuple(out))
        out = shuffle_trigrams(words, np.random.default_rng(seed))
        assert Counter(out) == Counter(words) and _splits_into(out, grams)
        across.add(tuple(out))
    assert len(within) > (1 if n == 2 else 3)  # 2 words: 2 orders
    assert len(across) == 1 if len(grams) == 1 else len(across) > 3  # a single trigram has nowhere to go


def test_perturbations_are_deterministic_per_seed():
    a = perturbed_captions(WORDS, TAGGED, np.random.default_rng(7))
    assert a == perturbed_captions(WORDS, TAGGED, np.random.default_rng(7))
    assert len(a) == 4 and all(Counter(c.split()) == Counter(pre_caption(" ".join(WORDS)).split()) for c in a)
    assert any(perturbed_captions(WORDS, TAGGED, np.random.default_rng(s)) != a for s in range(3))
    # ARO's order: nouns/adjectives shuffled, the rest shuffled, within trigrams, trigrams
    rng = np.random.default_rng(7)
    expected = [shuffle_nouns_and_adj(WORDS, TAGGED, rng), shuffle_allbut_nouns_and_adj(WORDS, TAGGED, rng),
                shuffle_within_trigrams(WORDS, rng), shuffle_trigrams(WORDS, rng)]
    assert a == [pre_caption(" ".join(e)) for e in expected]


def test_tokenize_and_pre_caption_as_aro_normalises():
    assert tokenize("A man's dog doesn't sit, on a red-brick wall.") == [
        "A", "man", "'s", "dog", "does", "n't", "sit", ",", "on", "a", "red-brick", "wall", "."]
    assert pre_caption('A Dog (brown) sits; on "the" bench!!  ') == "a dog brown sits on the bench"
    assert pre_caption("A dog , on a bench .") == "a dog , on a bench"  # commas stay
    assert pre_caption(" ".join(f"w{i}" for i in range(40))) == " ".join(f"w{i}" for i in range(30))


def test_order_items_drop_negatives_equal_to_the_caption():
    captions = [["A young man rides a brown horse near the old red barn."], ["A red dog.", "Dogs"]]
    tagger = DictTagger()
    items, dropped = order_items(captions, tagger, seed=1)
    assert tagger.calls == 3  # one tagging per caption
    # "Dogs" has a single word: every perturbation equals it, so the item is dropped
    assert [i for i, _, _ in items] == [0, 1] and dropped["items"] == 1
    (_, pos0, negs0), (_, pos1, negs1) = items
    assert pos0 == "a young man rides a brown horse near the old red barn" and len(negs0) == 4
    assert pos1 == "a red dog" and pos1 not in negs1 and len(set(negs1)) == len(negs1)
    assert len(negs1) < 4  # one noun and one adjective: shuffling them gives the caption back
    assert dropped["negatives"] == (4 - len(negs1)) + 4
    assert order_items(captions, DictTagger(), seed=1) == (items, dropped)
    assert order_items(captions, DictTagger(), seed=2)[0] != items
    # an item's texts depend on its own position and the seed only, not on the captions before it
    alone, _ = order_items([[], ["A red dog.", "Dogs"]], DictTagger(), seed=1)
    assert alone == [items[1]]


# ------------------------------------------------------------------------------ the adapters on disk


COCO_TEST = [["A young man rides a brown horse near the old red barn.", "A man, riding a horse near a barn."],
             ["A dog sits on a bench and a cat sleeps.", "The dog's bench in a street.", "A dog sits on a bench."]]
FLICKR_TEST = [["A man rides a horse in Paris .", "An old man rides a brown horse ."],
               ["A cat sleeps on the bench .", "Dogs"]]


def _karpathy_json(path: Path, entries: list[dict]) -> None:
    """Karpathy's caption_datasets layout: {"images": [{filepath?, filename, split, sentences: [{raw, tokens}]}]}."""
    images = []
    for i, e in enumerate(entries):
        sentences = [{"tokens": s.lower().split(), "raw": s, "imgid": i, "sentid": 10 * i + j}
                     for j, s in enumerate(e["captions"])]
        images.append({**{k: e[k] for k in ("filepath", "filename", "split") if k in e}, "imgid": i,
                       "sentences": sentences, "sentids": [s["sentid"] for s in sentences]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "dataset": path.stem.replace("dataset_", "")}), encoding="utf-8")


def _coco_tree(root: Path) -> Path:
    base = root / "mscoco_captions"
    entries = [{"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg", "split": "test",
                "captions": COCO_TEST[0]},
               {"filepath": "train2014", "filename": "COCO_train2014_000000057870.jpg", "split": "train",
                "captions": ["A restaurant has modern wooden tables and chairs."]},
               {"filepath": "val2014", "filename": "COCO_val2014_000000522418.jpg", "split": "test",
                "captions": COCO_TEST[1]},
               {"filepath": "val2014", "filename": "COCO_val2014_000000184613.jpg", "split": "restval",
                "captions": ["A woman wearing a net on her head cutting a cake."]}]
    for i, e in enumerate(entries):
        write_image(base / e["filepath"] / e["filename"], i, size=16, fmt="JPEG")
    _karpathy_json(base / "dataset_coco.json", entries)
    return base


def _flickr_tree(root: Path) -> Path:
    base = root / "flickr30k"
    entries = [{"filename": "1000092795.jpg", "split": "train", "captions": ["Two young guys with shaggy hair ."]},
               {"filename": "10002456.jpg", "split": "test", "captions": FLICKR_TEST[0]},
               {"filename": "1000344755.jpg", "split": "test", "captions": FLICKR_TEST[1]}]
    for i, e in enumerate(entries):
        write_image(base / "flickr30k-images" / e["filename"], i, size=16, fmt="JPEG")
    _karpathy_json(base / "dataset_flickr30k.json", entries)
    return base


@pytest.fixture
def fake_tagger(monkeypatch):
    tagger = DictTagger()
    monkeypatch.setattr(aro_order, "default_tagger", lambda: tagger)
    return tagger


def test_coco_order_on_disk_layout_end_to_end(tmp_path, fake_tagger):
    adapter = get_dataset("aro_coco_order")
    assert adapter.kind == "choices" and adapter.splits == ("test",) and adapter.primary_metric == "accuracy"
    assert not adapter.is_present(tmp_path)
    base = _coco_tree(tmp_path)
    assert adapter.is_present(tmp_path)
    split = adapter.load_split("test", tmp_path)
    assert len(split) == 5 and split.subsets == ["coco_order"] * 5  # every test caption, not the first N
    first, second = str(base / "val2014" / "COCO_val2014_000000391895.jpg"), str(
        base / "val2014" / "COCO_val2014_000000522418.jpg")
    assert split.paths == [first, first, second, second, second]
    assert split.positives == [pre_caption(c) for caps in COCO_TEST for c in caps]
    assert split.positives[1] == "a man, riding a horse near a barn"
    expected, _ = order_items(COCO_TEST, DictTagger(), seed=1)
    assert split.negatives == [n for _, _, n in expected]
    assert all(1 <= len(n) <= 4 and split.positives[i] not in n for i, n in enumerate(split.negatives))
    assert split.labels.tolist() == list(range(5))
    again = adapter.load_split("test", tmp_path)
    assert again.fingerprint == split.fingerprint and again.negatives == split.negatives
    # the generated texts are part of the fingerprint: another seed gives another cache key
    reseeded = dataclasses.replace(adapter, seed=2).load_split("test", tmp_path)
    assert reseeded.negatives != split.negatives and reseeded.fingerprint != split.fingerprint

    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    (r,) = api.run(model=str(ckpt), suite="smoke-compositional", datasets=["aro_coco_order"], data_root=tmp_path,
                   cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", progress=False, bootstrap=0)
    assert r["task"] == "image_caption_selection" and r["dataset"] == "aro_coco_order" and r["n_samples"] == 5
    assert list(r["image_caption_selection"]["per_subset"]) == ["coco_order"] and r["image_caption_selection"]["per_subset"]["coco_order"]["n_items"] == 5
    chance = 100 * np.mean([1 / (1 + len(n)) for n in split.negatives])
    assert r["image_caption_selection"]["chance"]["accuracy"] == pytest.approx(chance, abs=0.01)
    assert 0.0 <= r["metrics"]["accuracy"] <= 100.0


def test_flickr30k_order_on_disk_layout(tmp_path, fake_tagger):
    adapter = get_dataset("aro_flickr30k_order")
    with pytest.raises(DataError, match="dataset_flickr30k.json or its images not found.*request form.*en_core_web_sm"):
        adapter.load_split("test", tmp_path)
    base = _flickr_tree(tmp_path)
    split = adapter.load_split("test", tmp_path)
    # "Dogs" (one word) has no distinct perturbation: its item is dropped
    assert split.positives == ["a man rides a horse in paris", "an old man rides a brown horse",
                               "a cat sleeps on the bench"]
    assert split.paths == [str(base / "flickr30k-images" / n) for n in ("10002456.jpg",) * 2 + ("1000344755.jpg",)]
    assert split.subsets == ["flickr30k_order"] * 3
    assert split.fingerprint != get_dataset("flickr30k").load_split("test", tmp_path).fingerprint


def test_missing_spacy_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "spacy", None)  # `import spacy` raises ImportError
    aro_order._spacy_pipeline.cache_clear()
    try:
        with pytest.raises(DataError, match="spaCy, which is not installed") as err:
            aro_order.default_tagger()
        assert str(err.value).endswith(INSTALL) and "\n" not in str(err.value)
        _flickr_tree(tmp_path)
        with pytest.raises(DataError, match="python -m spacy download en_core_web_sm"):
            get_dataset("aro_flickr30k_order").load_split("test", tmp_path)
        ckpt = write_tiny_clip(tmp_path / "tiny.pt")
        code = main(["run", "--model", str(ckpt), "--suite", "smoke-compositional", "--dataset", "aro_flickr30k_order",
                     "--data-root", str(tmp_path), "--cache-dir", str(tmp_path / "c"), "--results-dir",
                     str(tmp_path / "r"), "--no-progress"])
        err_lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err_lines) == 1 and INSTALL in err_lines[0]
    finally:
        aro_order._spacy_pipeline.cache_clear()


def test_download_prints_where_the_files_go(tmp_path, capsys):
    assert main(["download", "aro_coco_order", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot be downloaded automatically" in err
    assert f"{tmp_path}/mscoco_captions/dataset_coco.json" in err and "val2014.zip" in err and INSTALL in err
    assert main(["download", "aro_flickr30k_order", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "flickr30k-images" in err and "dataset_flickr30k.json" in err and INSTALL in err
    _flickr_tree(tmp_path)
    assert main(["download", "aro_flickr30k_order", "--data-root", str(tmp_path)]) == 0  # already in place
