"""Multilingual image-text sets in their published layouts: Crossmodal-3600 (``xm3600``), XTD10 (``xtd10``),
XTD200 (``xtd200``) and Flickr30k-200 (``flickr30k_200``).

One split holds the captions of every language the set publishes; the adapter's ``language``
(``clipbench.datasets.languages.in_language``) picks which ones the tasks see. The split's targets
digest covers every language's captions, so the fingerprint, and with it the image-feature cache
entry, is the same in every language: the images are encoded once for all 36 languages.

* ``xm3600`` (Thapliyal et al., EMNLP 2022, google.github.io/crossmodal-3600): 3,600 Open Images
  photos, captions in 36 languages. Layout (as CLIP_benchmark's builder reads it):
  ``<data-root>/xm3600/captions.jsonl`` (one JSON object per image: ``"image/key"`` and, per language
  code, ``{"caption": [...]}``) and ``<data-root>/xm3600/images/<image/key>.jpg``. Each image is scored
  with its first caption in the language, as CLIP_benchmark 1.6.2 does (``captions[0]``).
* ``xtd10`` (Aggarwal & Kale 2020, github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10): 1,000
  MSCOCO images, one caption per image in each language; ``test_image_names.txt`` lists the images and
  ``test_1kcaptions_<code>.txt`` holds the captions line by line (the repository's ``XTD10/``, ``MIC/`` for
  de and fr, ``STAIR/`` for Japanese, whose file says ``jp``): under ``<data-root>/xtd10/`` directly or in
  those sub-folders, with the images in ``<data-root>/xtd10/images/``.

* ``xtd200`` (NLLB-CLIP, Visheratin 2023, github.com/visheratin/nllb-clip ``data/xtd200/``): XTD10's 1,000
  images and ``test_image_names.txt``, its English captions machine-translated (NLLB-3.3B) into the 201
  FLORES-200 languages, one file per language named by its code (``zho_Hans.txt``, ``eng_Latn.txt``), in
  XTD10's line format; under ``<data-root>/xtd200/``, the images in ``<data-root>/xtd200/images/``.
* ``flickr30k_200`` (the same repository, ``data/flickr30k-200/``): the 1,000 Flickr30k test images (Karpathy
  split), ``filenames.txt`` lists them and ``<code>.txt`` holds one caption per image in each of the 201
  languages; under ``<data-root>/flickr30k_200/``, the images in ``images/``.

CLIP_benchmark's ``multilingual_mscoco_captions`` reads XTD10's own files (its index and captions are the XTD10
repository's ``XTD10/``, ``MIC/``, ``STAIR/`` files, same 11 languages), so it is a second name of ``xtd10``.
XTD200 and Flickr30k-200 are scored as CLIP_benchmark 1.6.2 scores them: the image list and the language's
file line by line (clipbench refuses a file whose line count differs from the image list's, and missing images).

File names from the caption files are untrusted: a name that is not a plain file name (a path separator,
``..``) is refused, so no caption file can point outside the image folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.caption_files import _read_rows as read_rows
from clipbench.datasets.flores import FLORES200_CODES
from clipbench.datasets.image_text import (
    ImageTextAdapter,
    ImageTextSplit,
    caption_lines,
    captions_digest,
    image_text_fields,
)
from clipbench.datasets.local import DataFolder
from clipbench.foundations.errors import DataError

#: Crossmodal-3600's 36 language codes (its captions.jsonl keys; CLIP_benchmark's SUPPORTED_LANGUAGES)
XM3600_LANGUAGES = ("ar", "bn", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fil", "fr", "he", "hi", "hr", "hu",
                    "id", "it", "ja", "ko", "mi", "nl", "no", "pl", "pt", "quz", "ro", "ru", "sv", "sw", "te", "th",
                    "tr", "uk", "vi", "zh")
#: XTD10's languages (English and ten others; the Japanese file is named ``jp``)
XTD10_LANGUAGES = ("en", "de", "es", "fr", "it", "ja", "ko", "pl", "ru", "tr", "zh")
#: XTD200's and Flickr30k-200's: FLORES-200's codes, English (``eng_Latn``) first as ``en``
FLORES200_LANGUAGES = ("en", *(code for code in FLORES200_CODES if code != "eng_Latn"))


class MultilingualSplit(ImageTextSplit):
    """Image files with their captions in every language; ``captions`` are the ``language``'s."""

    def __init__(self, dataset_name: str, split: str, paths, all_captions: dict[str, list[list[str]]],
                 language: str, root=None) -> None:
        self.all_captions = all_captions
        self.language = language
        super().__init__(dataset_name, split, paths, all_captions[language], root=root)

    def targets_digest(self) -> str:
        """Every language's captions: one fingerprint (and image cache entry) for all the languages."""
        return captions_digest([[lang, *caps] for lang in sorted(self.all_captions)
                                for caps in self.all_captions[lang]])

    def subset(self, indices, spec: str) -> SplitData:
        idx = [int(i) for i in indices]
        sub = {lang: [caps[i] for i in idx] for lang, caps in self.all_captions.items()}
        return self.derived(MultilingualSplit(self.dataset_name, self.split, [self.paths[i] for i in idx], sub,
                                              self.language, self.root), spec)


def _plain_name(name, where: str) -> str:
    text = str(name).strip()
    if not text or "/" in text or "\\" in text or text in (".", "..") or "\x00" in text:
        raise DataError(f"{where}: image name {text!r} is not a plain file name (no folders, no '..')")
    return text


@dataclass
class MultilingualAdapter(DataFolder, ImageTextAdapter):
    """A multilingual caption set under ``<data-root>/<folder>/``: ``layout`` ``xm3600`` (``captions.jsonl``), or
    ``lines``: an ``index_file`` of image names and, per language, a file of one caption per line named
    ``caption_file`` with the language's code in it (``file_codes`` where the file spells it otherwise), in the
    folder or one of its ``sub_folders``."""

    languages: tuple[str, ...] = ()
    layout: str = "lines"
    index_file: str = "test_image_names.txt"
    caption_file: str = "test_1kcaptions_{code}.txt"
    file_codes: tuple[tuple[str, str], ...] = ()
    sub_folders: tuple[str, ...] = (".",)

    def is_present(self, data_root: str | Path) -> bool:
        base = self.root(data_root)
        try:
            index = base / ("captions.jsonl" if self.layout == "xm3600" else self.index_file)
            return index.is_file() and (base / "images").is_dir()
        except OSError:
            return False

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        base = self.root(data_root)
        if not self.is_present(data_root):
            raise DataError(f"{self.name}: {base} lacks its caption index or images/; {self.manual_for(data_root)}")
        names, captions = (self._xm3600 if self.layout == "xm3600" else self._line_files)(base)
        images = base / "images"
        paths = [images / name for name in names]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise DataError(f"{self.name}: {len(missing)} of {len(paths)} images are missing from {images} "
                            f"(first: {missing[0]}); {self.manual_for(data_root)}")
        return MultilingualSplit(self.name, split, [str(p) for p in paths], captions, self.language, root=images)

    def _xm3600(self, base: Path) -> tuple[list[str], dict[str, list[list[str]]]]:
        path = base / "captions.jsonl"
        names: list[str] = []
        captions: dict[str, list[list[str]]] = {lang: [] for lang in self.languages}
        for number, item in enumerate(read_rows(path), 1):  # the one JSON-lines reader (UTF-8, objects only)
            where = f"{path}, image {number}"
            try:
                names.append(_plain_name(item["image/key"], where) + ".jpg")
                for lang in self.languages:
                    caps = [str(c).strip() for c in item[lang]["caption"] if str(c).strip()]
                    captions[lang].append(caps[:1])  # CLIP_benchmark scores the first caption per language
            except (KeyError, TypeError) as exc:
                raise DataError(f"{where} lacks {exc} (expected \"image/key\" and, per language, "
                                "{\"caption\": [...]})") from exc
        return names, captions

    def _line_files(self, base: Path) -> tuple[list[str], dict[str, list[list[str]]]]:
        index = base / self.index_file
        names = [_plain_name(n, str(index)) for n in _lines(index)]
        captions = {}
        codes = dict(self.file_codes)
        for lang in self.languages:
            file = self.caption_file.format(code=codes.get(lang, lang))
            found = [base / sub / file for sub in self.sub_folders if (base / sub / file).is_file()]
            if not found:
                raise DataError(f"{self.name}: {file} is in none of "
                                f"{', '.join(str(base / s) for s in self.sub_folders)}")
            lines = _lines(found[0])
            if len(lines) != len(names):
                raise DataError(f"{found[0]} has {len(lines)} captions for the {len(names)} images of {index}")
            captions[lang] = [[line] for line in lines]
        return names, captions


def _lines(path: Path) -> list[str]:
    try:
        return caption_lines(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text") from exc


def multilingual_adapters() -> list[MultilingualAdapter]:
    return [
        MultilingualAdapter(**image_text_fields(
            "xm3600", ("test",), "Crossmodal-3600: 3,600 images, a caption in each of 36 languages (--language)",
            folder="xm3600", layout="xm3600", languages=XM3600_LANGUAGES,
            origin="Crossmodal-3600 (google.github.io/crossmodal-3600; Thapliyal et al., EMNLP 2022), CC BY 4.0",
            manual="download google.github.io/crossmodal-3600/web-data/captions.zip (captions.jsonl) into "
                   "<data-root>/xm3600/ and extract open-images-dataset.s3.amazonaws.com/crossmodal-3600/images.tgz "
                   "so that <data-root>/xm3600/images/<image key>.jpg exist")),
        MultilingualAdapter(**image_text_fields(
            "xtd10", ("test",), "XTD10: 1,000 MSCOCO images, a caption in each of 11 languages (--language)",
            folder="xtd10", languages=XTD10_LANGUAGES, file_codes=(("ja", "jp"),),
            sub_folders=(".", "XTD10", "MIC", "STAIR"),
            origin="XTD10 (github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10; Aggarwal & Kale 2020)",
            manual="put test_image_names.txt and the test_1kcaptions_<lang>.txt files of "
                   "github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10 (folders XTD10/, MIC/, STAIR/, kept or "
                   "flattened) into <data-root>/xtd10/, and the 1,000 MSCOCO images it names into "
                   "<data-root>/xtd10/images/")),
        _flores_set("xtd200", "1,000 MSCOCO images (XTD10's)", "test_image_names.txt", "xtd200", "XTD10's captions",
                    "xtd10"),
        _flores_set("flickr30k_200", "1,000 Flickr30k test images", "filenames.txt", "flickr30k-200",
                    "Flickr30k test captions", "flickr30k"),
    ]


def _flores_set(name: str, images: str, index_file: str, repo_folder: str, translated: str,
                tarball: str) -> MultilingualAdapter:
    """One of NLLB-CLIP's 201-language sets: ``<code>.txt`` per FLORES-200 language beside the image list."""
    title = {"xtd200": "XTD200", "flickr30k_200": "Flickr30k-200"}[name]
    return MultilingualAdapter(**image_text_fields(
        name, ("test",), f"{title}: {images}, a caption in each of 201 languages (--language, FLORES-200 codes)",
        folder=name, languages=FLORES200_LANGUAGES, index_file=index_file, caption_file="{code}.txt",
        file_codes=(("en", "eng_Latn"),),
        origin=f"{title} (github.com/visheratin/nllb-clip, data/{repo_folder}; Visheratin 2023, NLLB-CLIP), "
               f"{translated} translated by NLLB-3.3B",
        manual=f"put {index_file} and the <code>.txt files of github.com/visheratin/nllb-clip/tree/main/data/"
               f"{repo_folder} into <data-root>/{name}/, and the {images} it names (nllb-data.com/test/{tarball}/"
               f"images.tar.gz, as CLIP_benchmark fetches them) into <data-root>/{name}/images/"))
