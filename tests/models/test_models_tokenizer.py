"""clipbench's tokenizer against OpenAI's (``clip.simple_tokenizer`` / ``clip.tokenize``) on > 5,000 strings."""

from __future__ import annotations

import functools
import random

import pytest
import torch
from _models_fixtures import clip, reference_tokenizer

import clipbench
from clipbench.foundations.errors import ClipbenchError
from clipbench.models.tokenizer import get_tokenizer, tokenize

CLASSNAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple tree", "motorcycle", "mountain", "mouse", "mushroom", "oak tree", "orange", "orchid",
    "otter", "palm tree", "pear", "pickup truck", "pine tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew",
    "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
    "sweet pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train", "trout",
    "tulip", "turtle", "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
    "Abyssinian", "American Bulldog", "Boeing 737-800", "Cessna 172", "DC-10", "F/A-18",
    "Yorkshire Terrier", "jack-o'-lantern", "St. Bernard", "Pembroke Welsh Corgi", "crème brûlée",
    "jalapeño", "Curaçao", "café au lait", "piña colada", "Ferris wheel", "T-shirt", "CD player",
    "three-toed sloth", "king penguin", "O'Brien's pub", "U.S. flag", "7-Eleven", "M&M's",
    "pot (cooking)", "crane (bird)", "crane (machine)", "50 mph sign", "A320", "Tu-154", "x-ray",
    "annual crop land", "herbaceous vegetation land", "highway or road", "industrial buildings",
    "pasture land", "permanent crop land", "residential buildings", "river", "sea or lake",
    "Ibizan hound", "Great Pyrenees", "water ouzel", "hen-of-the-woods", "yellow lady's slipper",
]

TEMPLATES = [
    "a photo of a {}.", "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.",
    "a photo of the hard to see {}.", "a low resolution photo of the {}.", "a rendering of a {}.",
    "graffiti of a {}.", "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
    "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
    "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.",
    "a pixelated photo of the {}.", "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.",
    "a sketch of a {}.", "a toy {}.", "itap of a {}.", "a origami {}.", "a {} in a video game.",
    "art of the {}.", "a photo of the large {}.", "a photo of the small {}.", "the cartoon {}.",
    "a satellite photo of {}.", "a centered satellite photo of {}.", "{}, a type of pet.",
    "{}, a type of aircraft.", "a photo of a {}, a type of food.", "a photo of the number: \"{}\".",
    "a photo of a person {}.", "a zoomed in photo of a \"{}\" text.", "a meme.", "{}",
    "A PHOTO OF A {}!!!", "It's a {} — isn't it?", "   a   photo\tof a\n{}   ", "a&nbsp;photo of a {}",
    "a photo of a {} &amp; friends", "&lt;b&gt;{}&lt;/b&gt;", "{} 🐶🐱", "una foto de un {}.",
]

SPECIAL = [
    "", " ", "\t\n\r", "!!!", "...", "'s 't 're 've 'm 'll 'd", "I'M SHOUTING", "don't won't can't",
    "naïve café résumé façade", "Ångström Øresund Straße", "東京タワーの写真", "서울의 사진", "фото кошки",
    "صورة قطة", "תמונה של חתול", "ภาพถ่ายของแมว", "Δ delta λ lambda Ω ohm", "½ ¾ ² ³ µ", "ﬁ ﬂ ligatures",
    "emoji 😀😃😄😁 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️", "zero\u200bwidth\u200cjoiners\u200d", "non\u00a0breaking\u2003spaces",
    "&amp;amp; &lt; &gt; &quot; &#39; &#x263A; &copy; &euro;", "&amp;lt;script&amp;gt;", "Ã©tÃ© mojibake",
    "numbers 0123456789 3.14159 1,000,000 -42", "mixed\ttabs\nnewlines\r\nand   spaces",
    "<|startoftext|> literal special tokens <|endoftext|>", "a<|endoftext|>b", "URL https://example.com/a?b=c&d=e",
    "email someone@example.org", "C++ C# F# .NET", "snake_case camelCase kebab-case", "\u0301combining first",
    "e\u0301 vs é", "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ", "𝔣𝔯𝔞𝔨𝔱𝔲𝔯 𝕕𝕠𝕦𝕓𝕝𝕖", "control\x00\x01\x07chars", "\ufeffbom start",
]


def _random_strings(count: int, seed: int = 0) -> list[str]:
    """Seeded strings drawn from ASCII, Latin-1, Greek, CJK, emoji, punctuation and whitespace."""
    rng = random.Random(seed)
    pools = [
        [chr(c) for c in range(32, 127)],
        [chr(c) for c in range(0xA0, 0x250)],
        [chr(c) for c in range(0x370, 0x400)],
        [chr(c) for c in range(0x4E00, 0x4F00)],
        [chr(c) for c in range(0x1F600, 0x1F650)],
        list(" \t\n\u00a0\u2009&;#<>'\""),
    ]
    out = []
    for _ in range(count):
        length = rng.randint(1, 40)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(length)))
    return out


def _long_strings() -> list[str]:
    words = ["photograph", "of", "an", "extraordinarily", "complicated", "scene", "😀", "naïve", "&amp;"]
    rng = random.Random(1)
    return [" ".join(rng.choice(words) for _ in range(n)) for n in (40, 60, 75, 76, 77, 100, 300)]


def _dataset_prompts() -> list[str]:
    """The shipped datasets' prompts, reduced to a set that covers every one of their words.

    The full product (about 300,000 prompts) would take minutes through two tokenizers. Tokenizing
    is word by word (regex split, then BPE per word), so a set in which every whitespace-separated
    word of the shipped prompts occurs at least once, plus every template of each dataset (all
    prompts of its first class), exercises the same merges as the full product.
    """
    try:
        import clipbench.datasets as datasets
    except ImportError:  # datasets package not there yet: the own corpus above still applies
        return []
    from clipbench.foundations.registry import Registry

    get = getattr(datasets, "get_dataset", None)
    seen_words: set[str] = set()
    chosen: dict[str, None] = {}
    for registry in [v for v in vars(datasets).values() if isinstance(v, Registry)]:
        for name in registry.names():
            adapter = get(name) if get is not None else registry.get(name)
            if adapter.kind != "classification":  # image-text and choices sets carry no class prompts
                continue
            per_class = adapter.class_prompts()
            chosen.update(dict.fromkeys(per_class[0] if per_class else []))
            for prompts in per_class:
                for prompt in prompts:
                    words = set(prompt.split())
                    if not words <= seen_words:
                        seen_words |= words
                        chosen[prompt] = None
    return list(chosen)


@functools.lru_cache(maxsize=1)
def corpus() -> tuple[str, ...]:
    texts = [t.format(c) for c in CLASSNAMES for t in TEMPLATES]
    texts += SPECIAL + _random_strings(600) + _dataset_prompts()
    return tuple(texts)


def test_corpus_is_large_enough():
    assert len(corpus()) >= 5000


@pytest.mark.peer
def test_encode_identical_to_reference_tokenizer():
    ours, theirs = get_tokenizer(), reference_tokenizer.SimpleTokenizer()
    mismatches = [text for text in corpus() if ours.encode(text) != theirs.encode(text)]
    assert not mismatches, mismatches[:5]


@pytest.mark.peer
def test_tokenize_identical_to_clip_tokenize():
    texts = list(corpus())
    for start in range(0, len(texts), 1000):
        batch = texts[start : start + 1000]
        assert torch.equal(tokenize(batch, truncate=True), clip.tokenize(batch, truncate=True).long())


@pytest.mark.peer
@pytest.mark.parametrize("text", _long_strings())
def test_long_texts_truncate_like_reference(text):
    ours = clipbench.tokenize([text], truncate=True)
    assert torch.equal(ours, clip.tokenize([text], truncate=True).long())
    eot = get_tokenizer().eot_id
    nonzero = ours[0][ours[0] != 0]
    assert nonzero[0] == get_tokenizer().sot_id and nonzero[-1] == eot


@pytest.mark.peer
def test_overlong_text_without_truncate_is_a_clear_error():
    text = "word " * 100
    with pytest.raises(RuntimeError):
        clip.tokenize([text])
    with pytest.raises(ClipbenchError, match=r"102 tokens, longer than the context length 77"):
        clipbench.tokenize([text])


@pytest.mark.peer
def test_output_shape_dtype_and_context_length():
    tokens = clipbench.tokenize("a photo of a cat")
    assert tokens.shape == (1, 77) and tokens.dtype == torch.long
    short = clipbench.tokenize(["a", "b c"], context_length=8)
    assert short.shape == (2, 8)
    assert torch.equal(short, clip.tokenize(["a", "b c"], context_length=8).long())


@pytest.mark.peer
def test_vocabulary_matches_reference():
    ours, theirs = get_tokenizer(), reference_tokenizer.SimpleTokenizer()
    assert ours.encoder == theirs.encoder
    assert ours.vocab_size == 49408


def test_decode_round_trips_clean_text():
    tok = get_tokenizer()
    assert tok.decode(tok.encode("A Photo of a CAT, naïve 😀")) == "a photo of a cat , naïve 😀"


def test_tokenizer_is_cached_not_rebuilt():
    assert get_tokenizer() is get_tokenizer()
