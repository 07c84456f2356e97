"""demo.py --web (utils/web_demo.py + utils/web_ui.py) on tiny assets: the model side directly (uploads
refused with clear messages, text -> motion files, motion -> caption from .npy and .bvh), the missing
quickstart checkpoint, and the page end to end in Debian's headless chromium driven by Playwright."""
import os
import shutil
import socket

import numpy as np
import pytest

from test_demo import assets  # noqa: F401  (the tiny checkpoint of tests/test_demo.py)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

PROMPT = "a person walks forward."
REASONING = "plan: the legs alternate, the body moves forward."
CAPTION = "a person walks forward slowly."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _args(assets, out, *extra):  # noqa: F811
    from options.option_llm import get_demo_args
    return get_demo_args(["--web", "--model-ckpt", str(assets["ckpt"]), "--vq-ckpt", str(assets["vq"]),
                          "--save-dir", str(out), "--device", "cpu", "--dtype", "fp32", "--max-new-tokens", "24",
                          "--seed", "0", "--port", str(_free_port()), "--render-max-frames", "8", *extra])


@pytest.fixture(scope="module")
def web(assets, tmp_path_factory):  # noqa: F811
    from utils.web_demo import WebDemo
    return WebDemo(_args(assets, tmp_path_factory.mktemp("web")))


@pytest.fixture
def forced(monkeypatch):
    """The untrained tiny model rarely closes its answer: give every output codes / a caption (the real call
    runs first), as tests/test_gallery.py does."""
    from models.mllm import MotionLLM
    real = MotionLLM.generate

    def gen(self, task, **kw):
        outs = real(self, task, **kw)
        if task == "t2m":
            return [{**o, "motion_codes": [1, 2, 3, 4, 5, 6], "reasoning": REASONING, "status": "ok"} for o in outs]
        return [{**o, "answer": CAPTION, "reasoning": "the legs alternate.", "status": "ok"} for o in outs]

    monkeypatch.setattr(MotionLLM, "generate", gen)


def _clip(assets, kind="new_joint_vecs"):  # noqa: F811
    return sorted((assets["data"] / kind).glob("*.npy"))[0]


def test_bad_uploads_are_clear_errors(web, tmp_path):
    from demo import DemoError
    cases = {}
    np.save(tmp_path / "wide.npy", np.zeros((40, 7), np.float32))
    cases["wide.npy"] = "(40, 7) is neither features (T, 263) nor joints (T, 22, 3)"
    np.save(tmp_path / "long.npy", np.zeros((web.args.web_max_frames + 1, 263), np.float32))
    cases["long.npy"] = "too long"
    np.save(tmp_path / "short.npy", np.zeros((2, 263), np.float32))
    cases["short.npy"] = "fewer than the VQ unit length"
    (tmp_path / "text.npy").write_text("a person walks\n")
    cases["text.npy"] = "not a motion"
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases["obj.npy"] = "not a motion"
    np.save(tmp_path / "nan.npy", np.full((40, 263), np.nan, np.float32))
    cases["nan.npy"] = "NaN"
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n")
    cases["pic.png"] = "not a motion file"
    (tmp_path / "junk.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")
    cases["junk.bvh"] = "not a usable BVH motion"
    for name, expect in cases.items():
        with pytest.raises(DemoError) as e:
            web.load_upload(tmp_path / name)
        assert name in str(e.value) and expect in str(e.value), str(e.value)
    with pytest.raises(DemoError, match="upload a motion file first"):
        web.motion_to_caption(None)
    with pytest.raises(DemoError, match="type a prompt first"):
        web.text_to_motion("   ")
    gr = pytest.importorskip("gradio")
    from utils.web_ui import make_handlers
    _, m2t = make_handlers(web)
    with pytest.raises(gr.Error) as e:  # what the page shows
        m2t(str(tmp_path / "wide.npy"), None, False, 2, 1, 0, False)
    assert "is neither features" in e.value.message


def test_text_to_motion_and_captions(web, assets, tmp_path, forced):  # noqa: F811
    rec = web.text_to_motion(PROMPT, seed=1)
    assert rec["status"] == "ok" and rec["reasoning"] == REASONING and rec["frames"] == 24
    assert set(rec["files"]) >= {"joints", "features", "bvh", "animation"} and "errors" not in rec["files"]
    assert np.load(rec["files"]["joints"]).shape == (24, 22, 3)
    feats, joints = _clip(assets), _clip(assets, "new_joints")
    for path, kind in ((feats, "features"), (joints, "joints"), (rec["files"]["bvh"], "bvh")):
        r = web.motion_to_caption(path, seed=0)
        assert r["caption"] == CAPTION and r["input_kind"] == kind and r["codes"], kind
    # a BVH with a mapping that does not fit is refused with the mapping's problem
    from demo import DemoError
    with pytest.raises(DemoError, match="joint mapping does not fit"):
        web.load_upload(rec["files"]["bvh"], {"pelvis": "Hips"})


def test_real_generation_and_com(web):
    """Unforced: the tiny model's answer may be malformed; the record says so, nothing crashes; CoM runs."""
    rec = web.text_to_motion("a person jumps.")
    assert rec["status"] and ((rec["codes"] and rec["files"]) or (not rec["codes"] and not rec["files"]))
    web.args.reward_align_weight, web.args.nli_model_name = 0.0, "none"  # rank without an evaluator
    rec = web.text_to_motion("a person waves.", use_com=True, candidates=2, refine_steps=1)
    assert rec["com"]["used"] and rec["com"]["candidates"] == 2


def test_missing_quickstart_checkpoint(tmp_path, monkeypatch, capsys):
    import demo
    from utils import web_demo
    monkeypatch.setattr(web_demo, "ROOT", tmp_path)
    with pytest.raises(SystemExit) as e:
        demo.main(["--web", "--save-dir", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "morl_rlvr_t2m/motionllm_rlvr_epoch_0.pth" in err and "bash quickstart.sh" in err


def test_browser_end_to_end(assets, tmp_path, forced):  # noqa: F811
    """Debian's chromium, headless, through Playwright: prompt -> reasoning + animation + downloads, a .npy
    upload -> caption, a bad upload -> the error message, the next request still answered; no request leaves
    127.0.0.1. About 20 s (under the ~1 min of the slow marker)."""
    pytest.importorskip("gradio", reason="gradio is not installed (pip install -r requirements.txt)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    exe = shutil.which("chromium")
    if not exe:
        pytest.skip("no chromium on PATH (apt-get install -y chromium; .ci/run installs it)")
    from utils.web_demo import serve
    args = _args(assets, tmp_path / "out")
    app, url = serve(args, block=False)
    assert url.startswith("http://127.0.0.1:")
    bad = tmp_path / "bad_motion.npy"
    np.save(bad, np.zeros((30, 5), np.float32))
    remote = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1600})

            def local_only(route):
                if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
                    return route.continue_()
                remote.append(route.request.url)
                return route.abort()

            page.route("**/*", local_only)
            expect = sync_api.expect
            page.goto(url)
            page.locator("#prompt textarea").fill(PROMPT)
            page.locator("#generate").click()
            expect(page.locator("#t2m-reasoning textarea")).to_have_value(REASONING, timeout=180_000)
            expect(page.locator("#t2m-animation img")).to_be_visible(timeout=60_000)
            assert ".gif" in page.locator("#t2m-animation img").get_attribute("src")
            expect(page.locator("#t2m-status")).to_contain_text("ok")
            expect(page.locator("#t2m-files")).to_contain_text(".bvh")
            shot1 = tmp_path / "web_demo_t2m.png"
            page.screenshot(path=str(shot1), full_page=True)

            page.get_by_role("tab", name="Motion → caption").click()
            page.locator("#motion-upload input[type=file]").set_input_files(str(_clip(assets)))
            expect(page.locator("#motion-upload")).to_contain_text(_clip(assets).name, timeout=30_000)
            page.locator("#caption").click()
            expect(page.locator("#m2t-caption textarea")).to_have_value(CAPTION, timeout=180_000)
            expect(page.locator("#m2t-reasoning textarea")).to_have_value("the legs alternate.")
            shot2 = tmp_path / "web_demo_m2t.png"
            page.screenshot(path=str(shot2), full_page=True)

            page.reload()
            page.get_by_role("tab", name="Motion → caption").click()
            page.locator("#motion-upload input[type=file]").set_input_files(str(bad))
            expect(page.locator("#motion-upload")).to_contain_text(bad.name, timeout=30_000)
            page.locator("#caption").click()
            toast = page.locator("[data-testid='toast-text']").first
            expect(toast).to_contain_text(f"{bad.name}: shape (30, 5) is neither features", timeout=60_000)
            page.wait_for_timeout(1000)  # the toast's fly-in transition
            shot3 = tmp_path / "web_demo_error.png"
            page.screenshot(path=str(shot3))  # the viewport: the message is a toast at its top
            # the server is still up and answers the next request (a joints clip)
            page.reload()
            page.get_by_role("tab", name="Motion → caption").click()
            joints = _clip(assets, "new_joints")
            page.locator("#motion-upload input[type=file]").set_input_files(str(joints))
            expect(page.locator("#motion-upload")).to_contain_text(joints.name, timeout=30_000)
            page.locator("#caption").click()
            expect(page.locator("#m2t-status")).to_contain_text("joints", timeout=180_000)
            expect(page.locator("#m2t-caption textarea")).to_have_value(CAPTION)
            browser.close()
    finally:
        app.close()
    print(f"\nscreenshots: {shot1} {shot2} {shot3}")
    assert not remote, f"the page fetched remote URLs: {remote}"
