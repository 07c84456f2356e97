"""experiments/make_tables.py on eval reports in the schema eval_mllm.py writes.

The reports are built with the project's own functions (``aggregate_replications``, ``matching_metrics``,
``compute_m2t_metrics``) on small fabricated values; ``meta`` has exactly the keys of eval_mllm.py's meta
(checked against its source), and eval_mllm.py's own ``markdown()`` must accept every report."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import make_tables as mt
from utils.metrics import aggregate_replications, format_mean_ci, matching_metrics

ROOT = Path(__file__).resolve().parents[1]
T2M_KEYS = ["R_precision_top1", "R_precision_top2", "R_precision_top3", "FID", "MM_Dist", "Diversity", "MModality",
            "Phys", "Phys_below_0.8"]


def eval_meta_keys() -> set:
    """The keys of the ``meta`` dict literal in eval_mllm.main."""
    tree = ast.parse((ROOT / "eval_mllm.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "meta" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    raise AssertionError("no meta = {...} in eval_mllm.py")


def fake_meta(task: str, com: bool, rng, replications: int, failures: int = 0, judge_sha: str = "feedface" * 8) -> dict:
    sha = lambda: "".join(rng.choice(list("0123456789abcdef"), 64))  # noqa: E731
    judge = {"given": "checkpoints/t2m/Comp_v6_KLD005", "opt": "/x/opt.txt", "weights": "/x/model/finest.tar",
             "weights_sha256": judge_sha, "meta": "/x/meta", "sha256": judge_sha}
    critic = {"opt": "/c/opt.txt", "weights": "/c/model/finest.tar", "weights_sha256": sha(), "meta": "/c/meta",
              "sha256": sha()}
    samples = 64
    return {"checkpoint": "experiments/x/motionllm_rlvr_epoch_2.pth", "split": "test", "engine": "hf", "device": "cpu",
            "com": "K=4, T=2" if com else "off",
            "decoding": ("Chain-of-Motion sampling (T=1.0, top-p 1.0)" if com else
                         "sampling (T=1.0, top-p 1.0)" if task == "t2m" else "greedy"),
            "format_mask": True, "com_scorer": "consistency + physics + format (never sees the reference)" if com else None,
            "critic": critic if com else None, "judge_as_critic": False, "evaluator": judge, "failures": failures,
            "failure_kinds": {"no_answer": failures} if failures else {}, "samples": samples,
            "seconds_per_sample": 0.01, "wall_seconds": 1.0, "replications": replications if task == "t2m" else 1}


def fake_t2m(rng, replications=3, mm=True) -> dict:
    def reps():
        out = []
        for _ in range(replications):
            t, m = rng.normal(size=(64, 8)), rng.normal(size=(64, 8))
            r = matching_metrics(t, m, 32)
            r.pop("n")
            r.update({"FID": float(rng.uniform(0.1, 2)), "Diversity": float(rng.uniform(8, 10)),
                      "Phys": float(rng.uniform(0, 1)), "Phys_below_0.8": float(rng.uniform(0, 1))})
            if mm:
                r["MModality"] = float(rng.uniform(1, 3))
            out.append(r)
        return aggregate_replications(out)
    real = reps()
    for k in ("MModality", "Phys", "Phys_below_0.8"):
        real.pop(k, None)
    return {"generated": reps(), "real_motion": real, "items": 64}


def fake_m2t(rng, convention="motiongpt") -> dict:
    from utils.m2t_metrics import compute_m2t_metrics
    words = ["a", "person", "walks", "forward", "jumps", "turns", "left", "slowly", "waves", "runs"]
    cands = [" ".join(rng.choice(words, 5)) for _ in range(40)]
    refs = [[" ".join(rng.choice(words, 6)) for _ in range(3)] for _ in range(40)]
    nlg = compute_m2t_metrics(cands, refs, convention=convention, compute_bertscore=False)
    match = matching_metrics(rng.normal(size=(40, 8)), rng.normal(size=(40, 8)), 32, rows="motion")
    match["orientation"] = "motion rows"
    real = matching_metrics(rng.normal(size=(40, 8)), rng.normal(size=(40, 8)), 32, rows="motion")
    real["orientation"] = "motion rows"
    base = compute_m2t_metrics([cands[0]] * 40, refs, convention=convention, compute_bertscore=False)
    return {"nlg": nlg, "items": 40, "baseline_most_frequent_caption": {"caption": cands[0], **base},
            "matching": match, "matching_real": real,
            "samples": [{"id": str(i), "generated": c, "references": r} for i, (c, r) in enumerate(zip(cands, refs))][:20]}


def write(folder: Path, task: str, com: bool, results: dict, meta: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"eval_{task}{'_com' if com else ''}.json"
    p.write_text(json.dumps({"meta": meta, "results": results}))
    return p


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("runs")
    sft, rl, abl = root / "eval_sft", root / "eval_rlvr", root / "abl_no_phys"
    data = {}
    data["sft_t2m"] = write(sft, "t2m", False, fake_t2m(rng, mm=False), fake_meta("t2m", False, rng, 3))
    data["rl_t2m"] = write(rl, "t2m", False, fake_t2m(rng), fake_meta("t2m", False, rng, 3, failures=2))
    data["rl_t2m_com"] = write(rl, "t2m", True, fake_t2m(rng), fake_meta("t2m", True, rng, 3))
    data["sft_m2t"] = write(sft, "m2t", False, fake_m2t(rng, "tm2t"), fake_meta("m2t", False, rng, 1))
    data["rl_m2t"] = write(rl, "m2t", False, fake_m2t(rng), fake_meta("m2t", False, rng, 1))
    data["rl_m2t_com"] = write(rl, "m2t", True, fake_m2t(rng), fake_meta("m2t", True, rng, 1))
    data["abl_t2m"] = write(abl, "t2m", True, fake_t2m(rng), fake_meta("t2m", True, rng, 3))
    return root, data


def load(p):
    return json.loads(Path(p).read_text())


def test_fabricated_reports_match_eval_mllm(runs):
    import eval_mllm
    _, data = runs
    keys = eval_meta_keys()
    for name, p in data.items():
        d = load(p)
        assert set(d["meta"]) == keys, name
        task = "t2m" if "t2m" in name else "m2t"
        assert "MotionLLM" in eval_mllm.markdown(task, d["results"], d["meta"])  # the project's own renderer


def tables_of(args):
    return {t.key: t for t in mt.build_tables(mt.parse_args(args))}


def test_t2m_rows_ci_and_published(runs, tmp_path):
    root, data = runs
    tabs = tables_of([str(root / "eval_sft"), str(root / "eval_rlvr"), "--dataset", "humanml3d"])
    t = tabs["t2m"]
    names = [r[0] for r in t.ours]
    assert names == ["Real motion (this judge)", "eval_sft", "eval_rlvr", "eval_rlvr + CoM"]
    rows = {r[0]: r for r in t.ours}
    for name, key in (("eval_sft", "sft_t2m"), ("eval_rlvr", "rl_t2m"), ("eval_rlvr + CoM", "rl_t2m_com")):
        g = load(data[key])["results"]["generated"]
        for i, (col, _, _) in enumerate(mt.T2M_COLS):
            cell = rows[name][1 + i]
            if col in g:
                assert cell == format_mean_ci(g[col]["mean"], g[col]["ci"])
                assert re.fullmatch(r"-?\d+\.\d{3}±\.\d{3}|\d+\.\d{3}±\d+\.\d{3}", cell), cell
            else:
                assert cell == mt.DASH  # the SFT report has no MModality
    real = load(data["sft_t2m"])["results"]["real_motion"]
    assert rows["Real motion (this judge)"][1] == format_mean_ci(real["R_precision_top1"]["mean"],
                                                                 real["R_precision_top1"]["ci"])
    # convention column from the meta
    assert "greedy" not in rows["eval_rlvr"][-1] and "sampling" in rows["eval_rlvr"][-1]
    assert "CoM K=4, T=2" in rows["eval_rlvr + CoM"][-1]
    assert "3 replications" in rows["eval_sft"][-1]
    # the published rows of HumanML3D, from the data file, with their convention; MoRL provisional
    pub = json.loads(mt.PUBLISHED.read_text())["t2m"]["humanml3d"]
    pub_names = [r[0] for r in t.published]
    for row in pub:
        name = row["method"] + (" *" if row["provisional"] else "")
        assert name in pub_names
        out = t.published[pub_names.index(name)]
        assert out[-1] == row["convention"]
        assert out[1] == row["values"].get("R_precision_top1", mt.DASH)
    for m in ("Real motion", "TM2T", "T2M-GPT", "MoMask", "MotionGPT"):
        assert m in pub_names
    assert "MoRL (reported) *" in pub_names
    md = mt.render_markdown(t, "humanml3d")
    assert "provisional" in md and "failed generations" in md and "eval_rlvr: 2/64" in md
    assert "different judges" not in md and "judge feedfacefeed" in rows["eval_sft"][-1]
    other = write(tmp_path / "other_judge", "t2m", False, load(data["rl_t2m"])["results"],
                  fake_meta("t2m", False, np.random.default_rng(1), 3, judge_sha="ab" * 32))
    t = tables_of([str(root / "eval_sft"), str(other)])["t2m"]
    assert "different judges" in mt.render_markdown(t, "humanml3d")


def test_m2t_rows_and_conventions(runs):
    root, data = runs
    t = tables_of([str(root / "eval_sft"), f"MoRL (ours)={root / 'eval_rlvr'}", "--dataset", "humanml3d"])["m2t"]
    rows = {r[0]: r for r in t.ours}
    assert list(rows) == ["Real captions (this judge)", "Most frequent train caption", "eval_sft", "MoRL (ours)",
                          "MoRL (ours) + CoM"]
    d = load(data["rl_m2t"])["results"]
    r = rows["MoRL (ours)"]
    assert r[1] == f"{d['matching']['R_precision_top1']:.3f}" and r[3] == f"{d['matching']['MM_Dist']:.3f}"
    assert r[4] == f"{100 * d['nlg']['bleu_1']:.2f}" and r[7] == f"{100 * d['nlg']['cider']:.2f}"
    assert r[8] == mt.DASH  # BERTScore not computed
    assert "raw captions" in r[-1] and "BERTScore not computed" in r[-1] and "greedy" in r[-1]
    assert "TM2T processed words" in rows["eval_sft"][-1]
    assert "Chain-of-Motion" in rows["MoRL (ours) + CoM"][-1]
    pub = {p[0]: p for p in t.published}
    assert "raw captions" in pub["MoRL (reported) *"][-1]
    assert pub["MoRL (reported) *"][5].endswith("†")  # BLEU@4 is weak
    assert "nlg-eval" in pub["TM2T (self-reported)"][-1]


def test_ablation_table(runs):
    root, data = runs
    rl = root / "eval_rlvr"
    t = tables_of(["--ablation", f"full={rl}", "--ablation", f"w/o R_phys={root / 'abl_no_phys'}",
                   "--ablation", f"w/o CoM={rl / 'eval_t2m.json'},{rl / 'eval_m2t.json'}"])["ablation"]
    rows = {r[0]: r for r in t.ours}
    assert list(rows) == ["full", "w/o R_phys", "w/o CoM"]
    full_t2m = load(data["rl_t2m_com"])["results"]["generated"]  # a folder gives its CoM report
    assert rows["full"][2] == format_mean_ci(full_t2m["FID"]["mean"], full_t2m["FID"]["ci"])
    plain = load(data["rl_t2m"])["results"]["generated"]
    assert rows["w/o CoM"][2] == format_mean_ci(plain["FID"]["mean"], plain["FID"]["ci"])
    assert rows["w/o R_phys"][4:8] == [mt.DASH] * 4  # no m2t run for this variant
    assert "CoM" in rows["full"][-1] and "CoM" not in rows["w/o CoM"][-1]
    assert any(p[0].startswith("w/o R_phys") for p in t.published)


def check_latex(tex: str):
    assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    assert all(ord(c) < 128 for c in tex), "LaTeX output must be ASCII"
    for m in re.finditer(r"\\begin\{tabular\}", tex):
        spec, depth, i = "", 0, m.end()
        while True:  # the balanced {...} column spec
            ch = tex[i]
            depth += (ch == "{") - (ch == "}")
            spec += ch
            i += 1
            if depth == 0:
                break
        body = tex[i:tex.index(r"\end{tabular}", i)]
        ncols = len(re.findall(r"[lcrp]", re.sub(r"\{[^{}]*\}", "", spec[1:-1])))
        assert r"\toprule" in body and r"\bottomrule" in body
        for line in body.splitlines():
            line = line.strip()
            if not line.endswith(r"\\"):
                continue
            cells = re.split(r"(?<!\\)&", line[:-2])
            assert len(cells) == ncols, (len(cells), ncols, line)
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") >= 1
    assert tex.count(r"\begin{table*}") == tex.count(r"\end{table*}")


def test_cli_writes_markdown_and_latex(runs, tmp_path):
    root, _ = runs
    out = tmp_path / "tables"
    rc = mt.main([str(root / "eval_sft"), str(root / "eval_rlvr"), "--dataset", "kit", "--out", str(out),
                  "--ablation", f"w/o R_phys={root / 'abl_no_phys'}"])
    assert rc == 0
    for k in ("t2m", "m2t", "ablation"):
        assert (out / f"{k}.md").is_file()
        check_latex((out / f"{k}.tex").read_text())
    tex = (out / "tables.tex").read_text()
    check_latex(tex)
    assert r"$\pm$" in tex and r"\toprule" in tex and "KIT-ML" in tex
    md = (out / "tables.md").read_text()
    assert "MoMask" in md and "11.08±.097" in md  # the KIT-ML published rows


def test_quickstart_command_synthetic(runs, tmp_path):
    """What a quickstart user runs: the script itself, by path, rows named by folder (+ CoM)."""
    root, _ = runs
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "make_tables.py"), str(root / "eval_sft"),
                        str(root / "eval_rlvr"), "--dataset", "synthetic", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "| eval_rlvr + CoM |" in r.stdout and "| eval_sft |" in r.stdout
    assert "MoMask" not in r.stdout and "No published numbers" in r.stdout


def test_bad_inputs_name_file_and_field(runs, tmp_path):
    root, data = runs
    bad = tmp_path / "bad" / "eval_t2m.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(mt.TableError, match=re.escape(str(bad)) + ".*not valid JSON"):
        mt.load_report(bad)
    d = load(data["rl_t2m"])
    d["results"]["generated"]["FID"] = 0.3
    bad.write_text(json.dumps(d))
    with pytest.raises(mt.TableError, match=r"results\.generated\.FID"):
        mt.load_report(bad)
    del d["meta"]
    bad.write_text(json.dumps(d))
    with pytest.raises(mt.TableError, match="missing field 'meta'"):
        mt.load_report(bad)
    with pytest.raises(mt.TableError, match="no eval_t2m.json"):
        mt.reports_in(tmp_path / "bad" / "..")
    assert mt.main([str(tmp_path / "nowhere")]) == 2
    pub = json.loads(mt.PUBLISHED.read_text())
    pub["t2m"]["humanml3d"][0]["values"]["FID"] = "about 0.002"
    (tmp_path / "pub.json").write_text(json.dumps(pub))
    with pytest.raises(mt.TableError, match=r"t2m\.humanml3d\[0\]\.values\.FID"):
        mt.load_published("humanml3d", tmp_path / "pub.json")


# ---------------------------------------------------------------------------------------------- VQ-VAE table
def fake_vq_report(folder: Path, rng, replications=3, judge_sha="feedface" * 8, ckpt_sha="c0ffee00" * 8,
                   identity=False) -> Path:
    """An eval_vq.json in the schema eval_vq.py writes (its metric keys, built with the project's functions)."""
    def reps(extra: bool):
        out = []
        for _ in range(replications):
            r = matching_metrics(rng.normal(size=(64, 8)), rng.normal(size=(64, 8)), 32)
            r.pop("n")
            r.update({"FID": float(rng.uniform(0.05, 0.5)), "Diversity": float(rng.uniform(8, 10))})
            if extra:
                r.update({"MPJPE_mm": float(rng.uniform(20, 60)), "MPJPE_root_aligned_mm": float(rng.uniform(10, 30)),
                          "code_perplexity": float(rng.uniform(100, 400)), "code_usage": float(rng.uniform(0.5, 1))})
            out.append(r)
        return aggregate_replications(out)
    judge = {"given": "checkpoints/t2m/Comp_v6_KLD005", "opt": "/x/opt.txt", "weights": "/x/model/finest.tar",
             "weights_sha256": judge_sha, "meta": "/x/meta", "sha256": judge_sha}
    meta = {"checkpoint": None if identity else {"path": "experiments/hml3d_vqvae/net_best_fid.pth", "sha256": ckpt_sha,
                                                 "vq_config": {"nb_code": 512}, "stats": "/x/meta"},
            "identity": identity, "split": "test", "dataname": "t2m", "device": "cpu", "evaluator": judge,
            "replications": replications, "batch_size": 32, "seed": 123, "wall_seconds": 1.0}
    results = {"reconstruction": reps(True), "real_motion": reps(False), "items": 4384,
               "evaluated_per_replication": 4384 // 32 * 32}
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "eval_vq.json"
    p.write_text(json.dumps({"meta": meta, "results": results}))
    return p


def test_vq_table(tmp_path):
    import eval_vq
    rng = np.random.default_rng(3)
    ours = fake_vq_report(tmp_path / "hml3d_eval_vqvae", rng)
    other = fake_vq_report(tmp_path / "other", rng, ckpt_sha="ab" * 32)
    d = load(ours)
    # the fabricated report uses eval_vq.py's metric names and renders with its own Markdown writer
    assert set(d["results"]["reconstruction"]) == set(eval_vq.PROTOCOL_KEYS + eval_vq.EXTRA_KEYS)
    assert "VQ-VAE reconstruction" in eval_vq.markdown(d["results"], {**d["meta"], "wall_seconds": 1.0})
    tabs = tables_of(["--vq", f"VQ-VAE (ours)={ours.parent}", "--vq", str(other), "--dataset", "humanml3d"])
    assert list(tabs) == ["vq"]
    t = tabs["vq"]
    keys = [c[0] for c in t.columns]
    assert keys == ["R_precision_top1", "R_precision_top2", "R_precision_top3", "FID", "MM_Dist", "Diversity",
                    "MPJPE_root_aligned_mm"]
    rows = {r[0]: r for r in t.ours}
    assert list(rows) == ["Real motion (this judge)", "VQ-VAE (ours)", "other"]
    rec, real = d["results"]["reconstruction"], d["results"]["real_motion"]
    for i, k in enumerate(keys):
        assert rows["VQ-VAE (ours)"][1 + i] == format_mean_ci(rec[k]["mean"], rec[k]["ci"])
        assert rows["Real motion (this judge)"][1 + i] == (format_mean_ci(real[k]["mean"], real[k]["ci"])
                                                           if k in real else mt.DASH)
    conv = rows["VQ-VAE (ours)"][-1]
    assert "3 replications x 4384 items" in conv and "ckpt c0ffee00c0ff" in conv and "judge feedfacefeed" in conv
    assert "same batches" in conv and "test split" in conv
    assert "ckpt abababababab" in rows["other"][-1]
    # published: the papers' real motion and T2M-GPT's tokenizer, provisional, unconfirmed values marked
    pub = {r[0]: r for r in t.published}
    assert list(pub) == ["Real motion", "T2M-GPT VQ-VAE (reconstruction) *"]
    gpt = pub["T2M-GPT VQ-VAE (reconstruction) *"]
    assert gpt[1:8] == ["0.501±.002", "0.692±.002†", "0.785±.002†", "0.070±.001", "3.072±.009†", "9.593±.079†",
                        mt.DASH]
    assert "20 replications" in gpt[-1] and pub["Real motion"][4] == "0.002±.000"
    md = mt.render_markdown(t, "humanml3d")
    assert "VQ-VAE reconstruction on HumanML3D" in md and "provisional" in md and "MPJPE" in md
    assert "different judges" not in md
    check_latex(mt.render_latex(t, "humanml3d"))
    # KIT-ML has its own published row; the synthetic dataset none
    kit = tables_of(["--vq", str(ours), "--dataset", "kit"])["vq"]
    assert [r[0] for r in kit.published] == ["Real motion", "T2M-GPT VQ-VAE (reconstruction) *"]
    assert "11.08±.097" in kit.published[0]
    syn = tables_of(["--vq", str(ours), "--dataset", "synthetic"])["vq"]
    assert syn.published == [] and "No published numbers" in mt.render_markdown(syn, "synthetic")
    # rows of different judges are flagged; an identity report is named as the check it is
    odd = fake_vq_report(tmp_path / "ident", rng, judge_sha="ab" * 32, identity=True)
    t = tables_of(["--vq", str(ours), "--vq", str(odd)])["vq"]
    md = mt.render_markdown(t, "humanml3d")
    assert "different judges" in md and "ident (identity check)" in md and "identity" in md


def test_vq_table_with_the_other_tables_and_bad_inputs(runs, tmp_path):
    root, _ = runs
    rng = np.random.default_rng(4)
    vq = fake_vq_report(tmp_path / "vq", rng)
    out = tmp_path / "tables"
    assert mt.main([str(root / "eval_rlvr"), "--vq", str(vq.parent), "--vq", str(tmp_path / "missing"),
                    "--skip-missing", "--out", str(out)]) == 0
    assert (out / "vq.md").is_file() and "VQ-VAE reconstruction" in (out / "tables.md").read_text()
    check_latex((out / "tables.tex").read_text())
    with pytest.raises(mt.TableError, match=re.escape(str(tmp_path / "missing")) + ": no such run folder or eval_vq"):
        mt.load_vq_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(mt.TableError, match=re.escape(str(tmp_path / "empty" / "eval_vq.json")) + ": no such file"):
        mt.load_vq_report(tmp_path / "empty")
    d = load(vq)
    d["results"]["reconstruction"]["FID"] = 0.1
    bad = tmp_path / "bad" / "eval_vq.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(d))
    with pytest.raises(mt.TableError, match=r"results\.reconstruction\.FID"):
        mt.load_vq_report(bad)
    del d["results"]["reconstruction"]["FID"]
    bad.write_text(json.dumps(d))
    with pytest.raises(mt.TableError, match=r"missing field 'results\.reconstruction\.FID'"):
        mt.load_vq_report(bad)
    assert mt.main(["--vq", str(bad)]) == 2
    # a published file without a "vq" section still works (no published VQ rows)
    pub = json.loads(mt.PUBLISHED.read_text())
    del pub["vq"]
    (tmp_path / "pub.json").write_text(json.dumps(pub))
    assert mt.load_published("humanml3d", tmp_path / "pub.json")["vq"] == []
    pub = json.loads(mt.PUBLISHED.read_text())
    pub["vq"]["humanml3d"][0]["values"]["MPJPE_root_aligned_mm"] = "about 40"
    (tmp_path / "pub.json").write_text(json.dumps(pub))
    with pytest.raises(mt.TableError, match=r"vq\.humanml3d\[0\]\.values\.MPJPE_root_aligned_mm"):
        mt.load_published("humanml3d", tmp_path / "pub.json")
