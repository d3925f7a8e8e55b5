"""A user's prompt file against ``--language`` (the file wins; a file in another language is one error), and the
ImageNet subsets (ImageNet-A, -R, -O) in ImageNet's translated classnames."""

from __future__ import annotations

import pytest

from clipbench.datasets import get_dataset
from clipbench.datasets.imagenet import imagenet_wnids
from clipbench.datasets.languages import dataset_languages, in_language, plan_languages
from clipbench.datasets.prompts import packaged_prompts
from clipbench.foundations.errors import DataError

ZH_NAMES = [f"数字{i}号" for i in range(10)]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_a_users_prompt_file_wins_over_the_packaged_translation(tmp_path):
    body = "classnames: [" + ", ".join(ZH_NAMES) + "]\ntemplates: ['{c}的图片']\n"
    for declared in ("", "language: zh\n", "language: cn\n"):  # undeclared, declared, declared by alias
        adapter = get_dataset("digits", prompts=_write(tmp_path / "p.yaml", declared + body))
        [zh] = plan_languages(adapter, ("zh",))
        assert zh.language == "zh" and zh.class_prompts()[3] == ["数字3号的图片"]
        assert zh.class_prompts() != in_language(get_dataset("digits"), "zh").class_prompts()
        assert [a.language for a in plan_languages(adapter, ("all",))] == ["zh" if declared else "en"]
    # a file of templates only: its templates, with the packaged Chinese classnames
    adapter = get_dataset("digits", prompts=_write(tmp_path / "t.yaml", "language: zh\ntemplates: ['一张{c}的照片']\n"))
    zh = in_language(adapter, "zh")
    packaged = packaged_prompts("digits", language="zh").classnames
    assert zh.classnames == packaged and zh.class_prompts()[1] == [f"一张{packaged[1]}的照片"]
    # a dataset without that packaged language takes a complete file as the language's texts
    assert "zh" not in dataset_languages(get_dataset("mnist"))
    own = get_dataset("mnist", prompts=_write(tmp_path / "s.yaml", body))
    assert in_language(own, "zh").classnames[3] == "数字3号"


def test_a_prompt_file_in_another_language_is_one_error(tmp_path):
    file = _write(tmp_path / "p.yaml", "language: ja\ntemplates: ['{c}の写真']\n")
    adapter = get_dataset("digits", prompts=file)
    with pytest.raises(DataError, match=r"p\.yaml is in ja \(Japanese\), but the run asks for zh \(Chinese\): pass "
                                        r"--language ja"):
        plan_languages(adapter, ("zh",))
    with pytest.raises(DataError, match=r"holds the texts of one language, but the run asks for 2 \(en, ja\)"):
        plan_languages(adapter, ("en", "ja"))
    mnist = get_dataset("mnist", prompts=_write(tmp_path / "t.yaml", "templates: ['{c}的图片']\n"))
    with pytest.raises(DataError, match=r"gives only templates, and mnist has no packaged texts in zh"):
        in_language(mnist, "zh")
    with pytest.raises(DataError, match="'language'.*not a language code"):
        in_language(get_dataset("digits", prompts=_write(tmp_path / "b.yaml", "language: z9\ntemplates: ['{c}']\n")),
                    "zh")


def test_imagenet_subsets_take_imagenets_translated_classnames():
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    for name in ("imagenet_a", "imagenet_r", "imagenet_o"):
        adapter = get_dataset(name)
        wnids = packaged_prompts(name, require_classnames=False).raw["wnids"]
        assert set(dataset_languages(adapter)) >= {"en", "zh", "ja", "ar", "it"}
        for lang in ("zh", "ar"):
            translated = in_language(adapter, lang)
            full = packaged_prompts("imagenet1k", language=lang)
            assert translated.classnames == [full.classnames[index[w]] for w in wnids]
            assert translated.templates == full.templates and translated.language == lang
    # the English names are unchanged: CLIP's ImageNet names for the same wnids
    english = packaged_prompts("imagenet1k").classnames
    a = get_dataset("imagenet_a")
    assert a.classnames == [english[i] for i in a.prompt_classes] and len(a.prompt_classes) == 200


@pytest.mark.parametrize("name", ["xtd200", "flickr30k_200"])
def test_flores_sets_in_nllb_clips_layout(tmp_path, name):
    from _multilingual_fixtures import CAPTIONS, make_fake_flores_set

    from clipbench.datasets.splits import load_split

    make_fake_flores_set(tmp_path, name, 3)
    base = get_dataset(name)
    have = dataset_languages(base)
    assert len(have) == 201 and have[0] == "en" and "eng_Latn" not in have and "zho_Hans" in have
    assert [a.language for a in plan_languages(base, ("eng_Latn", "ZHO_hans", "arb-Arab"))] == ["en", "zho_Hans",
                                                                                                 "arb_Arab"]
    splits = {lang: load_split(in_language(base, lang), "test", tmp_path) for lang in ("en", "zho_Hans", "arb_Arab")}
    assert splits["zho_Hans"].captions[1] == [f"{CAPTIONS['zh'][1]} 1"]
    assert splits["en"].captions[2] == [f"{CAPTIONS['en'][2]} 2"]  # eng_Latn.txt
    assert len({s.fingerprint for s in splits.values()}) == 1  # the images are encoded once for all 201
    with pytest.raises(DataError, match=r"has no texts in zh \(Chinese\)"):
        in_language(base, "zh")  # FLORES codes, not ISO 639-1 (zho_Hans and zho_Hant are both Chinese)
    (tmp_path / name / "rus_Cyrl.txt").write_text("one line\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 1 captions for the 3 images"):
        load_split(base, "test", tmp_path)


def test_clip_benchmarks_multilingual_mscoco_is_xtd10():
    assert get_dataset("multilingual_mscoco_captions") is get_dataset("xtd10")


@pytest.mark.peer
def test_flores_sets_read_what_clip_benchmarks_builders_read(tmp_path, monkeypatch):
    """CLIP_benchmark 1.6.2's XTD200 and Flickr30k-200 builders on the same files: their downloads of the index
    and caption files (``_get_lines(url)``) answered from the fake layout, the images present."""
    import json

    from _multilingual_fixtures import make_fake_flores_set
    from clip_benchmark.datasets import flickr30k_200, xtd200

    from clipbench.datasets.splits import load_split

    for name, module, folder in (("xtd200", xtd200, "xtd200"), ("flickr30k_200", flickr30k_200, "flickr30k-200")):
        base = make_fake_flores_set(tmp_path, name, 4)
        if folder != name:  # CLIP_benchmark's folder for the images
            (tmp_path / folder).symlink_to(base, target_is_directory=True)
        monkeypatch.setattr(module, "_get_lines", lambda url, base=base: (base / url.rsplit("/", 1)[1])
                            .read_text(encoding="utf-8").splitlines())
        for lang in ("zho_Hans", "arb_Arab", "eng_Latn"):
            module.create_annotation_file(str(tmp_path), lang)
            theirs = json.loads((tmp_path / module.OUTPUT_FILENAME_TEMPLATE.format(lang)).read_text(encoding="utf-8"))
            ours = load_split(in_language(get_dataset(name), lang), "test", tmp_path)
            assert [p.replace(f"/{folder}/", f"/{name}/") for p in theirs["image_paths"]] == [str(p) for p in ours.paths]
            assert theirs["annotations"] == [c[0] for c in ours.captions]
