"""CLIP's byte-level BPE tokenizer: same ids as OpenAI's for every input, including edge cases.

Text is repaired with ftfy, HTML-unescaped twice, whitespace-collapsed and lower-cased; split by
CLIP's regex into words; each word's UTF-8 bytes are mapped to printable characters and merged by
the 48,894 BPE rules of ``bpe_simple_vocab_16e6.txt.gz`` (shipped with this package, see NOTICE.md).
A sequence is ``<|startoftext|> ... <|endoftext|>`` zero-padded to the context length.
"""

from __future__ import annotations

import functools
import gzip
import html
from collections.abc import Sequence
from importlib import resources

import ftfy
import regex
import torch

from clipbench.foundations.errors import ClipbenchError

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
CONTEXT_LENGTH = 77
_MERGES_FILE = "bpe_simple_vocab_16e6.txt.gz"
#: OpenAI's vocabulary uses the first 48,894 merges of the file (49408 ids = 512 byte symbols + merges + 2).
_N_MERGES = 49152 - 256 - 2
_WORD_END = "</w>"
_NO_RANK = float("inf")
_SPLIT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_WHITESPACE = regex.compile(r"\s+")


def byte_symbols() -> list[str]:
    """Printable character standing for each byte 0..255 (GPT-2's reversible byte <-> unicode map).

    Printable Latin-1 bytes stand for themselves; the others are moved to code points 256 and up in
    byte order, so that no byte maps to whitespace or a control character.
    """
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1))
    printable |= set(range(ord("®"), ord("ÿ") + 1))
    symbols = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def clean_text(text: str) -> str:
    """ftfy repair, double HTML unescape, whitespace collapse, lower-case: what CLIP saw in training.

    Printable ASCII without ``&`` skips ftfy and the unescapes: every ftfy fix acts on non-ASCII text, HTML
    entities (``&``), control characters or terminal escapes (not printable), so for such text both are the
    identity (``tests/models/test_tokenizer_fast_path.py`` checks every shipped prompt). ftfy was most of the
    time of tokenizing an ImageNet prompt ensemble (80,000 prompts)."""
    if not (text.isascii() and text.isprintable() and "&" not in text):
        text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return _WHITESPACE.sub(" ", text.strip()).strip().lower()


class Tokenizer:
    """Text -> CLIP token ids. Build it with ``get_tokenizer()`` (cached) rather than directly."""

    def __init__(self, merges_text: str) -> None:
        lines = merges_text.split("\n")[1 : _N_MERGES + 1]  # first line is a version header
        merges = [tuple(line.split()) for line in lines]
        if len(merges) != _N_MERGES or any(len(m) != 2 for m in merges):
            raise ClipbenchError(f"BPE merges file {_MERGES_FILE} is damaged (expected {_N_MERGES} pairs)")
        self._byte_symbols = byte_symbols()
        # OpenAI's vocabulary lists the single-byte symbols printable bytes first, then the shifted ones
        singles = sorted(self._byte_symbols, key=lambda symbol: (ord(symbol) >= 256, ord(symbol)))
        vocab = singles + [s + _WORD_END for s in singles]
        vocab += ["".join(pair) for pair in merges] + [SOT, EOT]
        self.encoder = {token: index for index, token in enumerate(vocab)}
        self.decoder = dict(enumerate(vocab))
        self._rank = {pair: rank for rank, pair in enumerate(merges)}
        self.sot_id = self.encoder[SOT]
        self.eot_id = self.encoder[EOT]
        self._word_cache: dict[str, list[int]] = {SOT: [self.sot_id], EOT: [self.eot_id]}

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _merge(self, word: str) -> list[str]:
        """Apply BPE merges to one word (already mapped to byte symbols), lowest rank first."""
        parts = list(word[:-1]) + [word[-1] + _WORD_END]
        while len(parts) > 1:
            best = min(zip(parts, parts[1:], strict=False), key=lambda pair: self._rank.get(pair, _NO_RANK))
            if best not in self._rank:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def _encode_word(self, word: str) -> list[int]:
        ids = self._word_cache.get(word)
        if ids is None:
            symbols = "".join(self._byte_symbols[b] for b in word.encode("utf-8"))
            ids = [self.encoder[piece] for piece in self._merge(symbols)]
            if len(self._word_cache) < 100_000:
                self._word_cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without the start/end markers."""
        ids: list[int] = []
        for word in _SPLIT.findall(clean_text(text)):
            ids.extend(self._encode_word(word))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Inverse of ``encode`` up to text cleaning (for diagnostics)."""
        text = "".join(self.decoder[int(i)] for i in ids if int(i) in self.decoder)
        byte_of = {symbol: byte for byte, symbol in enumerate(self._byte_symbols)}
        data = bytearray(byte_of[ch] for ch in text)
        return data.decode("utf-8", errors="replace").replace(_WORD_END, " ").strip()

    def __call__(
        self, texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, truncate: bool = False
    ) -> torch.Tensor:
        """Texts -> LongTensor [N, context_length]: SOT, ids, EOT, zero padding.

        Too long: with ``truncate`` the sequence is cut and its last token replaced by EOT, else
        ``ClipbenchError`` naming the text.
        """
        if isinstance(texts, str):
            texts = [texts]
        result = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id]
            if len(ids) > context_length:
                if not truncate:
                    shown = text if len(text) <= 60 else text[:57] + "..."
                    raise ClipbenchError(
                        f"text {shown!r} is {len(ids)} tokens, longer than the context length "
                        f"{context_length} (pass truncate=True to cut it)"
                    )
                ids = ids[:context_length]
                ids[-1] = self.eot_id
            result[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return result


@functools.lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    """The shared tokenizer, built on first use (reading the merges file takes ~0.3 s)."""
    data = resources.files("clipbench.models").joinpath(_MERGES_FILE).read_bytes()
    return Tokenizer(gzip.decompress(data).decode("utf-8"))


def tokenize(
    texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, truncate: bool = False
) -> torch.Tensor:
    """``clipbench.tokenize``: texts -> LongTensor [N, context_length] of CLIP token ids."""
    return get_tokenizer()(texts, context_length=context_length, truncate=truncate)
