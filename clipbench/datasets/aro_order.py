"""ARO's COCO-Order and Flickr30k-Order (Yuksekgonul et al., ICLR 2023): each caption vs 4 word-order perturbations.

Each caption of the Karpathy test split (COCO: 5,000 images, ~25k captions; Flickr30k: 1,000 images,
5,000 captions) becomes one ``choices`` item: its image, the caption as the positive and four perturbed
copies of it as negatives. The protocol, as github.com/mertyg/vision-language-models-are-bows sets it
(``dataset_zoo/aro_datasets.py``: ``COCO_Order``, ``Flickr30k_Order``; ``dataset_zoo/perturbations.py``:
``TextShuffler``; ``dataset_zoo/retrieval.py``: ``pre_caption``):

* every caption of every test image is used (not the first N), each image once per caption;
* the negatives, in ARO's order: (1) nouns shuffled among the noun positions and adjectives among the
  adjective positions (Penn tags NN/NNS/NNP/NNPS and JJ/JJR/JJS; two separate shuffles, the other
  tokens stay), (2) every other token shuffled among the other positions, (3) the tokens
  shuffled within each consecutive trigram, (4) the order of the trigrams shuffled (the last trigram
  holds the 1 or 2 leftover tokens);
* perturbations act on the raw caption's tokens joined by single spaces; then the positive and each
  negative pass ARO's ``pre_caption`` with ``max_words=30``: lowercase, each of ``.!"()*#:;~`` becomes
  a space, runs of 2+ whitespace become one space, strip, keep the first 30 space-separated words
  (so commas and the clitics split off by the tokeniser stay as separate words in the negatives);
* ARO tags with spaCy's ``en_core_web_sm`` (its tokeniser too) for (1)-(2) and tokenises with
  ``nltk.word_tokenize`` for (3)-(4); it seeds Python's and numpy's global generators once
  (``main_aro.py --seed``, default 1) and draws caption after caption;
* ARO keeps a perturbation equal to the caption (or to another perturbation) and scores with an
  ``argmax`` that puts the positive first, so such a negative can never make an item wrong.

Where clipbench differs, and why:

* one tokeniser (``tokenize``: Treebank-like, splits off punctuation and the clitics 's n't 're 've
  'll 'd 'm) feeds both the tagger and the trigram shuffles, so the tagger protocol is
  ``tag(words) -> universal tags``; on COCO/Flickr captions spaCy and NLTK tokenise alike;
* each caption draws from its own ``numpy.random.default_rng([seed, image, caption])`` (seed 1), so an
  item does not depend on the ones before it; the texts are therefore not ARO's byte for byte (its
  draws come from the global generators), the protocol is;
* a negative equal to the positive or to an earlier negative is dropped, equality being of their
  ``tokenize`` words ("a man , riding" equals "a man, riding": CLIP's tokeniser gives both the same
  tokens, so they tie): ``image_caption_selection`` counts a tie as wrong, ARO's ``argmax`` as right,
  and dropping the negative gives exactly ARO's outcome; an item left without any negative (or with
  an empty positive) is dropped and counted in the log (ARO counts such an item right);
* ARO reads BLIP's ``coco_karpathy_test.json`` / ``flickr30k_test.json`` (``{"image", "caption": [...]}``
  per image, made from Karpathy's split); clipbench reads Karpathy's own JSON, as its retrieval does.

The POS tagger is pluggable (``Tagger``); ``default_tagger`` imports spaCy only when a split loads and
turns its absence into a one-line ``DataError`` naming what to install. The images and captions come
from the ``mscoco_captions`` / ``flickr30k`` adapters' files (``KarpathyAdapter``), placed by hand.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from clipbench.datasets.base import SplitData
from clipbench.datasets.choices import ChoicesAdapter, ChoicesSplit, choices_fields
from clipbench.datasets.karpathy import KarpathyAdapter, karpathy_adapters
from clipbench.datasets.local import DataFolder
from clipbench.foundations.errors import DataError

log = logging.getLogger(__name__)

#: ARO's ``main_aro.py --seed`` default, and ``max_words`` of its COCO_Order / Flickr30k_Order
ARO_SEED = 1
MAX_WORDS = 30
#: universal tags whose tokens (1) shuffles: nouns among nouns, adjectives among adjectives
NOUN_TAGS = frozenset({"NOUN", "PROPN"})
ADJ_TAGS = frozenset({"ADJ"})
PERTURBATIONS = ("shuffle_nouns_and_adj", "shuffle_allbut_nouns_and_adj", "shuffle_within_trigrams",
                 "shuffle_trigrams")
SPACY_MODEL = "en_core_web_sm"
INSTALL = f"pip install spacy && python -m spacy download {SPACY_MODEL}"

_TOKEN = re.compile(r"\w+(?=n['’]t\b)|n['’]t\b|['’](?:s|re|ve|ll|d|m)\b|\w+(?:[-./]\w+)*|[^\w\s]", re.IGNORECASE)
_PRE_CAPTION_PUNCT = re.compile(r"[.!\"()*#:;~]")
_RUNS_OF_SPACE = re.compile(r"\s{2,}")


class Tagger(Protocol):
    """A part-of-speech tagger: one universal POS tag (``NOUN``, ``PROPN``, ``ADJ``, ``VERB``, ...) per word."""

    def tag(self, words: Sequence[str]) -> list[str]: ...


# ------------------------------------------------------------------------------ text: pure functions


def tokenize(text: str) -> list[str]:
    """Words, punctuation marks and clitics of ``text`` ("A man's hat." -> A, man, 's, hat, .)."""
    return _TOKEN.findall(text)


def pre_caption(text: str, max_words: int = MAX_WORDS) -> str:
    """ARO's (BLIP's) caption normalisation: lowercase, ``.!"()*#:;~`` dropped, spaces collapsed, first words kept."""
    text = _RUNS_OF_SPACE.sub(" ", _PRE_CAPTION_PUNCT.sub(" ", text.lower())).rstrip("\n").strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


def _shuffled_at(words: Sequence[str], positions: Sequence[int], rng: np.random.Generator, out: list[str]) -> None:
    for dst, src in zip(positions, rng.permutation(len(positions)), strict=True):
        out[dst] = words[positions[int(src)]]


def _check(words: Sequence[str], tags: Sequence[str]) -> None:
    if len(words) != len(tags):
        raise ValueError(f"the tagger gave {len(tags)} tags for {len(words)} words")


def shuffle_nouns_and_adj(words: Sequence[str], tags: Sequence[str], rng: np.random.Generator) -> list[str]:
    """(1) The nouns permuted among the noun positions, then the adjectives among the adjective positions."""
    _check(words, tags)
    out = list(words)
    for group in (NOUN_TAGS, ADJ_TAGS):
        _shuffled_at(words, [i for i, t in enumerate(tags) if t in group], rng, out)
    return out


def shuffle_allbut_nouns_and_adj(words: Sequence[str], tags: Sequence[str], rng: np.random.Generator) -> list[str]:
    """(2) Every word that is neither noun nor adjective permuted among those positions; nouns and adjectives stay."""
    _check(words, tags)
    out = list(words)
    _shuffled_at(words, [i for i, t in enumerate(tags) if t not in NOUN_TAGS | ADJ_TAGS], rng, out)
    return out


def trigrams(words: Sequence[str]) -> list[list[str]]:
    """Consecutive groups of 3 words; the last holds the 1 or 2 left over."""
    return [list(words[k:k + 3]) for k in range(0, len(words), 3)]


def shuffle_within_trigrams(words: Sequence[str], rng: np.random.Generator) -> list[str]:
    """(3) The words of each trigram permuted in place; the trigrams keep their order."""
    return [gram[int(k)] for gram in trigrams(words) for k in rng.permutation(len(gram))]


def shuffle_trigrams(words: Sequence[str], rng: np.random.Generator) -> list[str]:
    """(4) The trigrams permuted; each keeps its own word order."""
    grams = trigrams(words)
    return [w for k in rng.permutation(len(grams)) for w in grams[int(k)]]


def perturbed_captions(words: Sequence[str], tags: Sequence[str], rng: np.random.Generator,
                       max_words: int = MAX_WORDS) -> list[str]:
    """The 4 negatives of one tokenised caption, in ARO's order, each joined by spaces and ``pre_caption``-ed."""
    shuffled = [shuffle_nouns_and_adj(words, tags, rng), shuffle_allbut_nouns_and_adj(words, tags, rng),
                shuffle_within_trigrams(words, rng), shuffle_trigrams(words, rng)]
    return [pre_caption(" ".join(s), max_words) for s in shuffled]


def tag_all(tagger: Tagger, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tags of every sentence; a tagger with ``tag_many`` gets them in one batch (spaCy's ``pipe``)."""
    many = getattr(tagger, "tag_many", None)
    tags = many(sentences) if many is not None else [tagger.tag(s) for s in sentences]
    return [list(t) for t in tags]


def order_items(captions: Sequence[Sequence[str]], tagger: Tagger, seed: int = ARO_SEED,
                max_words: int = MAX_WORDS) -> tuple[list[tuple[int, str, list[str]]], dict[str, int]]:
    """(image index, positive, distinct negatives) per caption of ``captions[image]``, and counts of what was dropped.

    ``captions[i]``: image i's raw captions. Caption j of image i draws from ``default_rng([seed, i, j])``.
    """
    keys = [(i, j) for i, caps in enumerate(captions) for j in range(len(caps))]
    words = [tokenize(captions[i][j]) for i, j in keys]
    tags = tag_all(tagger, words)
    items, dropped = [], {"negatives": 0, "items": 0}
    for (i, j), w, t in zip(keys, words, tags, strict=True):
        positive = pre_caption(captions[i][j], max_words)
        candidates = perturbed_captions(w, t, np.random.default_rng([seed, i, j]), max_words)
        seen, negatives = {tuple(tokenize(positive))}, []
        for text in candidates:  # "a man , riding" is "a man, riding": a text encoder sees the same tokens
            key = tuple(tokenize(text))
            if key not in seen:
                seen.add(key)
                negatives.append(text)
        dropped["negatives"] += len(candidates) - len(negatives)
        if not positive or not negatives:
            dropped["items"] += 1
            continue
        items.append((i, positive, negatives))
    return items, dropped


# ------------------------------------------------------------------------------ the tagger


def _universal(penn: str, pos: str) -> str:
    """spaCy's tag of a token, as universal POS chosen so that NOUN/PROPN and ADJ are exactly ARO's Penn sets."""
    if penn in ("NN", "NNS"):
        return "NOUN"
    if penn in ("NNP", "NNPS"):
        return "PROPN"
    if penn in ("JJ", "JJR", "JJS"):
        return "ADJ"
    return "X" if pos in NOUN_TAGS | ADJ_TAGS else pos


class SpacyTagger:
    """spaCy's ``en_core_web_sm`` on pre-tokenised words (its tagger and attribute ruler; no parser or NER)."""

    name = f"spacy:{SPACY_MODEL}"

    def __init__(self, nlp) -> None:
        self.nlp = nlp

    def tag(self, words: Sequence[str]) -> list[str]:
        return self.tag_many([words])[0]

    def tag_many(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        from spacy.tokens import Doc

        docs = (Doc(self.nlp.vocab, words=list(w)) for w in sentences)
        return [[_universal(tok.tag_, tok.pos_) for tok in doc] for doc in self.nlp.pipe(docs, batch_size=512)]


@functools.lru_cache(maxsize=1)
def _spacy_pipeline():
    try:
        import spacy
    except ImportError as exc:
        raise DataError(f"ARO's order datasets tag nouns and adjectives with spaCy, which is not installed: "
                        f"{INSTALL}") from exc
    try:
        return spacy.load(SPACY_MODEL, disable=["parser", "ner", "lemmatizer"])
    except OSError as exc:
        raise DataError(f"ARO's order datasets tag nouns and adjectives with spaCy's {SPACY_MODEL}, which is "
                        f"not installed: {INSTALL}") from exc


def default_tagger() -> Tagger:
    """spaCy's ``en_core_web_sm`` (loaded once per process); a one-line ``DataError`` when it is missing."""
    return SpacyTagger(_spacy_pipeline())


# ------------------------------------------------------------------------------ the adapters


@dataclass
class AroOrderAdapter(DataFolder, ChoicesAdapter):
    """COCO-Order / Flickr30k-Order over the files of the Karpathy adapter ``base`` (its test split)."""

    base: str = ""
    subset_name: str = ""
    seed: int = ARO_SEED
    max_words: int = MAX_WORDS

    def karpathy(self) -> KarpathyAdapter:
        return next(a for a in karpathy_adapters() if a.name == self.base)

    def is_present(self, data_root: str | Path) -> bool:
        return self.karpathy().is_present(data_root)

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        karpathy = self.karpathy()
        if not karpathy.is_present(data_root):
            raise DataError(f"{self.name}: {karpathy.root(data_root) / karpathy.json_name} or its images not found; "
                            f"{self.manual_for(data_root)}")
        images = karpathy.load_split("test", data_root)
        tagger = default_tagger()
        items, dropped = order_items(images.captions, tagger, self.seed, self.max_words)
        if dropped["negatives"] or dropped["items"]:
            log.info("%s: dropped %d negatives equal to their caption or to another negative, and %d items left "
                     "without one", self.name, dropped["negatives"], dropped["items"])
        if not items:
            raise DataError(f"{self.name}: no caption of {karpathy.json_name}'s test split gives a distinct negative")
        out = ChoicesSplit(self.name, split, [images.paths[i] for i, _, _ in items], [p for _, p, _ in items],
                           [n for _, _, n in items], [self.subset_name] * len(items), root=images.root)
        out.verify_data = images.verify_data
        return out


def aro_order_adapters() -> list[AroOrderAdapter]:
    """``aro_coco_order`` (over ``mscoco_captions``) and ``aro_flickr30k_order`` (over ``flickr30k``)."""
    bases = {a.name: a for a in karpathy_adapters()}
    out = []
    for name, base, subset, title in (("aro_coco_order", "mscoco_captions", "coco_order", "COCO-Order"),
                                      ("aro_flickr30k_order", "flickr30k", "flickr30k_order", "Flickr30k-Order")):
        manual = (f"{name} is generated from the {base} files (Karpathy's test split): {bases[base].manual}; it tags "
                  f"the captions with spaCy's {SPACY_MODEL}: {INSTALL}")
        out.append(AroOrderAdapter(**choices_fields(
            name, f"ARO {title}: each {base} Karpathy test caption vs 4 word-order shuffles (spaCy POS tags)",
            origin="github.com/mertyg/vision-language-models-are-bows (dataset_zoo/aro_datasets.py)"),
            base=base, folder=bases[base].folder, subset_name=subset, manual=manual))
    return out


__all__ = ["ADJ_TAGS", "ARO_SEED", "MAX_WORDS", "NOUN_TAGS", "PERTURBATIONS", "AroOrderAdapter", "SpacyTagger",
           "Tagger", "aro_order_adapters", "default_tagger", "order_items", "perturbed_captions", "pre_caption",
           "shuffle_allbut_nouns_and_adj", "shuffle_nouns_and_adj", "shuffle_trigrams", "shuffle_within_trigrams",
           "tag_all", "tokenize", "trigrams"]
