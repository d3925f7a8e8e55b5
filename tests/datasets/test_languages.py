"""Languages of datasets: the packaged prompt files per language, the language switch and its errors, and the
multilingual retrieval sets (Crossmodal-3600, XTD10) in their published layouts."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from _multilingual_fixtures import CAPTIONS, make_fake_xm3600, make_fake_xtd10

from clipbench.datasets import get_dataset
from clipbench.datasets.languages import dataset_languages, in_language, language_list, plan_languages
from clipbench.datasets.multilingual import XM3600_LANGUAGES
from clipbench.datasets.prompts import packaged_prompts
from clipbench.datasets.splits import load_split
from clipbench.foundations.errors import ClipbenchError, DataError


def test_packaged_languages_parse_and_keep_the_label_space():
    digits, imagenet = get_dataset("digits"), get_dataset("imagenet1k")
    assert dataset_languages(digits)[0] == "en" and len(dataset_languages(digits)) >= 6
    assert {"zh", "ja", "ar", "it"} <= set(dataset_languages(imagenet)) and "zh" in dataset_languages(get_dataset("cifar10"))
    # ImageNetV2 and ImageNet-Sketch share ImageNet's classes, and so its translations
    assert in_language(get_dataset("imagenet_v2"), "ja").classnames == in_language(imagenet, "ja").classnames
    for name in ("digits", "cifar10", "imagenet1k"):
        base = get_dataset(name)
        for lang in dataset_languages(base)[1:]:
            translated = in_language(base, lang)
            assert translated.language == lang and len(translated.classnames) == len(base.classnames)
            assert translated.class_prompts() != base.class_prompts()
            doc = packaged_prompts(name, language=lang)
            assert doc.origin and ("licence" in doc.origin or "clipbench's own" in doc.origin)
    zh = in_language(digits, "cn")  # CLIP_benchmark's code for Chinese
    assert zh.language == "zh" and zh.class_prompts()[3][0] == "数字三的照片。"
    assert in_language(digits, "ar").class_prompts()[0][0] == "صورة للرقم صفر."


@pytest.mark.peer
def test_imagenet_translations_are_clip_benchmarks():
    import clip_benchmark.datasets as cb

    folder = resources.files(cb)
    for cb_code, lang in (("cn", "zh"), ("jp", "ja"), ("ar", "ar"), ("it", "it")):
        names = json.loads(folder.joinpath(f"{cb_code}_classnames.json").read_text("utf-8"))["imagenet1k"]
        templates = json.loads(folder.joinpath(f"{cb_code}_zeroshot_classification_templates.json")
                               .read_text("utf-8"))["imagenet1k"]
        ours = packaged_prompts("imagenet1k", language=lang)
        assert ours.classnames == names and ours.templates == templates


def test_language_errors_name_what_exists():
    with pytest.raises(DataError, match=r"digits has no texts in ko \(Korean\): its languages are en \(English\), ar"):
        in_language(get_dataset("digits"), "ko")
    with pytest.raises(DataError, match="shapes has no texts in zh"):
        plan_languages(get_dataset("shapes"), ("zh",))
    assert [a.language for a in plan_languages(get_dataset("shapes"), ("all",))] == ["en"]
    assert language_list("en, ZH,jp") == ("en", "zh", "ja")
    for bad, why in (("en,en", "more than once"), ("all,en", "stands alone"), ("e1", "not a language code")):
        with pytest.raises(ClipbenchError, match=why):
            language_list(bad)


def test_xm3600_layout_per_language(tmp_path):
    make_fake_xm3600(tmp_path, 3)
    base = get_dataset("xm3600")
    assert base.is_present(tmp_path) and dataset_languages(base) == XM3600_LANGUAGES and len(XM3600_LANGUAGES) == 36
    splits = {lang: load_split(in_language(base, lang), "test", tmp_path) for lang in ("en", "zh", "ar", "ja")}
    assert splits["zh"].captions == [[f"{CAPTIONS['zh'][i]} {i}"] for i in range(3)]  # the first caption only
    assert splits["ar"].captions[0] == ["دائرة حمراء على جدار أبيض 0"]
    # one fingerprint for every language: the images are extracted once for all 36
    assert len({s.fingerprint for s in splits.values()}) == 1
    sub = splits["ja"].subset([2, 0], "limit=2")
    assert sub.captions == [[f"{CAPTIONS['ja'][2]} 2"], [f"{CAPTIONS['ja'][0]} 0"]] and sub.fingerprint != splits["ja"].fingerprint


def test_xm3600_refuses_keys_that_leave_the_image_folder(tmp_path):
    base = make_fake_xm3600(tmp_path, 2)
    lines = (base / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[0])
    item["image/key"] = "../../etc/passwd"
    (base / "captions.jsonl").write_text("\n".join([json.dumps(item), lines[1]]), encoding="utf-8")
    with pytest.raises(DataError, match="not a plain file name"):
        load_split(get_dataset("xm3600"), "test", tmp_path)


def test_xtd10_repository_layout(tmp_path):
    make_fake_xtd10(tmp_path, 3)
    base = get_dataset("xtd10")
    ja = load_split(in_language(base, "ja"), "test", tmp_path)  # STAIR/test_1kcaptions_jp.txt
    de = load_split(in_language(base, "de"), "test", tmp_path)  # MIC/
    assert ja.captions[1] == [f"{CAPTIONS['ja'][1]} 1"] and de.captions[2] == [f"{CAPTIONS['de'][2]} 2"]
    assert ja.fingerprint == de.fingerprint
    (tmp_path / "xtd10" / "XTD10" / "test_1kcaptions_ru.txt").write_text("one line\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 1 captions for the 3 images"):
        load_split(in_language(base, "ru"), "test", tmp_path)


@pytest.mark.peer
def test_xm3600_reads_what_clip_benchmarks_builder_reads(tmp_path, capsys):
    """CLIP_benchmark 1.6.2's Crossmodal-3600 builder on the same files (present, so it downloads nothing)."""
    from clip_benchmark.datasets import crossmodal3600

    make_fake_xm3600(tmp_path, 4)
    for lang in ("zh", "ar", "fil"):
        crossmodal3600.create_annotation_file(str(tmp_path), lang)
        theirs = json.loads((tmp_path / f"crossmodal3600_captions-{lang}.json").read_text(encoding="utf-8"))
        ours = load_split(in_language(get_dataset("xm3600"), lang), "test", tmp_path)
        assert [str(p) for p in ours.paths] == theirs["image_paths"]
        assert [c[0] for c in ours.captions] == theirs["annotations"]
