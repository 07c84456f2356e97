"""utils/gallery.py: the self-contained results page (items, media next to it, no remote URLs), and
eval_mllm.py --gallery N end to end on tiny assets."""
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from utils import gallery as g


class Page(HTMLParser):
    """Items (article.item per section), media sources, every attribute value and the text."""

    def __init__(self):
        super().__init__()
        self.items, self.media, self.attrs, self.text, self.scripts = [], [], [], [], 0
        self._sec = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.attrs += [v for _, v in attrs if v]
        if tag == "section":
            self._sec = a.get("id")
        if tag == "article" and "item" in (a.get("class") or "").split():
            self.items.append((self._sec, a.get("id")))
        if tag in ("img", "video", "source") and a.get("src"):
            self.media.append(a["src"])
        if tag in ("script", "link") and (a.get("src") or a.get("href")):
            self.scripts += 1  # an external script / stylesheet

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text())
    return p


def check_page(index: Path, expect: dict):
    """``expect``: section -> number of items. Every media file exists; nothing remote."""
    page = parse(index)
    raw = index.read_text()
    got = {}
    for sec, _ in page.items:
        got[sec] = got.get(sec, 0) + 1
    assert got == expect
    assert page.media and all((index.parent / m).is_file() for m in page.media)
    assert not re.search(r"https?://", raw, re.I)       # no CDN, no remote anything
    assert not [a for a in page.attrs if "//" in a]      # nor protocol-relative sources
    assert page.scripts == 0                             # CSS and JS inline
    return page


def _walk(seconds=4.0, fps=20):
    """A small procedural walk on the t2m rest skeleton (T, 22, 3), feet near the floor."""
    from utils.paramUtil import T2M
    T = int(seconds * fps)
    t = np.arange(T) / fps
    off = T2M.tgt_offsets()
    rest = np.zeros((22, 3))
    rest[0] = [0, 0.95, 0]
    for j in range(1, 22):
        rest[j] = rest[T2M.parents[j]] + off[j]
    rest[:, 1] -= rest[:, 1].min()
    J = np.repeat(rest[None], T, 0)
    J[:, :, 2] += 1.2 * t[:, None]                          # forward at 1.2 m/s
    swing = 0.15 * np.sin(2 * np.pi * t)
    for j, s in ((7, 1), (10, 1), (8, -1), (11, -1)):       # feet
        J[:, j, 2] += s * swing
    return J


@pytest.fixture(scope="module")
def walk():
    return _walk()


def test_t2m_and_m2t_sections_on_one_page(tmp_path, walk):
    phys = g.physics_rows([walk, walk[:30], None])
    assert phys[2] is None and 0 <= phys[0]["total"] <= 1 and set(g.TERMS) <= set(phys[0])
    items = [g.t2m_item(f"{i:06d}", f"a person walks forward {i}", f"step {i}: walk.", walk, walk[: 30 + 10 * i],
                        {"judge distance (generated)": 3.0 + i, "judge rank": f"{i + 1} / 32"},
                        {"generated": phys[1], "ground truth": phys[0]}) for i in range(3)]
    items.append(g.t2m_item("failed", "a person <script>alert(1)</script> jumps", "", walk, None,
                            physics={"generated": None, "ground truth": phys[0]}, status="truncated",
                            answer="<think> walk walk walk"))
    index = g.write_gallery(tmp_path / "gallery", items, section="t2m", title="t2m test", meta={"checkpoint": "c.pth"},
                            size=96, stride=4)
    assert index == tmp_path / "gallery" / "index.html"
    page = check_page(index, {"t2m": 4})
    text = " ".join(page.text)
    assert "<script>alert" not in index.read_text() and "<script>alert(1)</script>" in text  # escaped, shown
    assert "step 2: walk." in text and "judge rank" in text and "skate" in text and "no motion" in text
    sec = json.loads((tmp_path / "gallery" / "t2m.json").read_text())
    assert [m["label"] for m in sec["items"][0]["media"]] == ["ground truth", "generated"]
    assert sec["items"][3]["media"][1]["file"] is None

    # an m2t section joins the page; the t2m one stays
    m2t = [g.m2t_item("m0", walk, "a person walks.", "legs alternate.", ["someone walks forward", "a man walks"],
                      {"judge distance (generated)": 2.5, "judge rank": "1 / 32"})]
    index = g.write_gallery(tmp_path / "gallery", m2t, section="m2t", size=96, stride=4)
    page = check_page(index, {"t2m": 4, "m2t": 1})
    assert "someone walks forward" in " ".join(page.text)

    # re-writing a section replaces its media: nothing stale, no temporary left behind
    g.write_gallery(tmp_path / "gallery", items[:1], section="t2m", size=96, stride=4)
    check_page(index, {"t2m": 1, "m2t": 1})
    assert sorted(p.name for p in (tmp_path / "gallery" / "media" / "t2m").iterdir()) == \
        ["000_generated.gif", "000_ground_truth.gif"]
    assert not [p for p in (tmp_path / "gallery").rglob("*") if ".tmp" in p.name or ".old" in p.name]
    with pytest.raises(ValueError, match="section name"):
        g.write_gallery(tmp_path / "gallery", items, section="../x")


def test_mesh_render_gallery(tmp_path, walk):
    pytest.importorskip("mannequin")
    items = [g.t2m_item("0", "a person walks.", "", walk, walk[:20])]
    index = g.write_gallery(tmp_path / "gallery", items, section="t2m", render="mesh", size=64, stride=4)
    page = check_page(index, {"t2m": 1})
    assert all(m.endswith((".gif", ".mp4")) for m in page.media) and len(page.media) == 2


def test_eval_mllm_gallery_end_to_end(tmp_path, monkeypatch):
    """eval_mllm.py --gallery 2 (t2m, then m2t into the same run folder) on a tiny untrained model: the page
    holds both sections with 2 items each, every animation exists, the counts of the evaluation are untouched."""
    import torch

    import eval_mllm
    import train_evaluator
    from conftest import build_tiny_lm_assets, train_tiny_vq
    from models.mllm import MLLMConfig, MotionLLM

    data, backbone = build_tiny_lm_assets(tmp_path, num_motions=40, seed=1, pretrain_steps=10)
    train_tiny_vq(data, tmp_path, 2, 16, 4)
    train_evaluator.main(["--data-root", str(data), "--glove-dir", str(data / "glove"), "--checkpoints-dir",
                          str(tmp_path / "ev"), "--movement-iters", "2", "--max-epoch", "1", "--no-progress",
                          "--eval-split", "train", "--dim-movement-enc-hidden", "16", "--dim-movement-latent", "16",
                          "--dim-text-hidden", "16", "--dim-motion-hidden", "16", "--dim-coemb-hidden", "16"])
    torch.manual_seed(0)
    m = MotionLLM(MLLMConfig(llm_backbone=str(backbone), nb_code=16, lora_r={"t2m": 4, "m2t": 4},
                             lora_alpha={"t2m": 8, "m2t": 8}, lora_dropout=0.0), device="cpu", dtype="fp32")
    m.save(tmp_path / "m.pth")
    real = MotionLLM.generate

    def some_codes(self, task, **kw):  # the untrained model never closes its answer: give the first one codes
        outs = real(self, task, **kw)
        if task == "t2m":
            outs[0] = {**outs[0], "motion_codes": [1, 2, 3, 4], "status": "ok", "reasoning": "plan a bow."}
        return outs

    monkeypatch.setattr(MotionLLM, "generate", some_codes)
    ev = ["--eval-ckpt", str(tmp_path / "m.pth"), "--vq-ckpt", str(tmp_path / "vq" / "net_last.pth"),
          "--data-root", str(data), "--evaluator-dir", str(tmp_path / "ev" / "t2m" / "text_mot_match"),
          "--glove-dir", str(data / "glove"), "--split", "train", "--batch-size", "4", "--max-items", "8",
          "--max-new-tokens", "12", "--no-progress", "--device", "cpu", "--dtype", "fp32", "--out-dir", str(tmp_path),
          "--exp-name", "eval", "--no-bertscore", "--gallery", "2"]
    res = eval_mllm.main(ev + ["--eval-task", "t2m", "--replications", "1", "--mm-num-samples", "0"])
    assert res["meta"]["samples"] == 8                          # the gallery's generations are not counted
    index = Path(res["gallery"])
    assert index == tmp_path / "eval" / "gallery" / "index.html"
    check_page(index, {"t2m": 2})
    sec = json.loads((index.parent / "t2m.json").read_text())
    for it in sec["items"]:
        assert set(it["judge"]) == {"judge distance (generated)", "judge distance (ground truth)", "judge rank"}
        assert it["judge"]["judge rank"].endswith("/ 8") and it["physics"]["ground truth"]["total"] > 0
        assert it["caption"] and it["media"][0]["label"] == "ground truth" and it["media"][0]["file"]
    first, second = sec["items"]
    assert first["status"] == "ok" and first["reasoning"] == "plan a bow." and first["media"][1]["frames"] > 0
    assert 0 <= first["physics"]["generated"]["total"] <= 1
    assert second["status"] != "ok" and second["media"][1]["file"] is None and second["physics"]["generated"] is None
    res = eval_mllm.main(ev + ["--eval-task", "m2t"])
    check_page(Path(res["gallery"]), {"t2m": 2, "m2t": 2})
    sec = json.loads((index.parent / "m2t.json").read_text())
    assert all(it["references"] and it["media"][0]["file"] for it in sec["items"])


def test_demo_mesh_animation_and_gallery(tmp_path, walk):
    """demo.py --render mesh writes the shaded body (a .gif without ffmpeg); --gallery N pages its results."""
    pytest.importorskip("mannequin")
    import demo
    files = demo.write_motion(tmp_path, "0_a_person_walks", np.zeros((len(walk) - 1, 263), np.float32), walk,
                              title="a person walks", bvh=False, max_frames=8, renderer="mesh")
    assert "errors" not in files and Path(files["animation"]).suffix in (".gif", ".mp4")
    results = {"mode": "t2m", "model_ckpt": "m.pth",
               "results": [{"index": 0, "prompt": "a person walks", "reasoning": "walk.", "files": files,
                            "status": "ok"},
                           {"index": 1, "prompt": "a person flies", "files": {}, "status": "no_motion"}]}
    page = g.demo_gallery(results, tmp_path, 5)
    assert page == tmp_path / "gallery" / "index.html"
    check_page(page, {"demo_t2m": 2})
    np.save(tmp_path / "clip.npy", walk)
    m2t = {"mode": "m2t", "results": [{"index": 0, "motion_file": str(tmp_path / "clip.npy"), "caption": "walks",
                                       "status": "ok"}]}
    check_page(g.demo_gallery(m2t, tmp_path, 1), {"demo_t2m": 2, "demo_m2t": 1})
