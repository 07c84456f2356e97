"""CoT data: motion facts, template reasoning (prepare/cot/), build_cot end to end, the
OpenAI-compatible reasoner against a local fake server, and the CoT JSONL loader."""
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from dataset.dataset_cot import CoTDataset, CoTRecordError, load_cot_records, validate_record
from prepare import build_cot
from prepare.cot.captions import parse_caption
from prepare.cot.openai_client import CompletionError, clean_completion
from prepare.cot.template import TemplateReasoner
from prepare.make_synthetic_dataset import build_dataset
from prepare.synthetic import actions
from prepare.synthetic.body import ground
from utils.io import atomic_torch_save
from utils.motion_facts import facing_angle, motion_facts, motion_facts_batch, repair_root_yaw
from utils.paramUtil import T2M
from utils.motion_process import mirror_joints, process_file, recover_from_ric

NB_CODE = 32


# ----------------------------------------------------------------------------- helpers / fixtures
def _clip(gen, seed=0, **want):
    """Features of the first clip of a synthetic action generator whose facts match ``want``."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        clip, facts = gen(rng)
        if all(facts.get(k) == v for k, v in want.items()):
            joints = ground(clip)
            return process_file(joints)[0].astype(np.float32), joints, facts
    raise AssertionError(f"no {gen.__name__} clip with {want}")


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    root = tmp_path_factory.mktemp("cot") / "h3d"
    build_dataset(root, num_motions=10, seed=5, progress=False)
    return root


@pytest.fixture(scope="module")
def vq_ckpt(syn, tmp_path_factory):
    from models.vqvae import HumanVQVAE, VQConfig
    torch.manual_seed(0)
    cfg = VQConfig(nb_code=NB_CODE, code_dim=16, output_emb_width=16, width=16, depth=1)
    model = HumanVQVAE(cfg)
    run = tmp_path_factory.mktemp("vq")
    path = atomic_torch_save({"net": model.state_dict(), "config": cfg.to_dict()}, run / "net_last.pth")
    (run / "meta").mkdir()
    np.save(run / "meta" / "mean.npy", np.load(syn / "Mean.npy"))
    np.save(run / "meta" / "std.npy", np.load(syn / "Std.npy"))
    return path


def _read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


# ----------------------------------------------------------------------------- motion facts
def test_heading_sign_left_positive():
    """+ = left / counter-clockwise from above, as documented; the mirror copy turns right."""
    feats_l, joints_l, _ = _clip(actions.turn, side="left", angle=90)
    feats_r, _, _ = _clip(actions.turn, side="right", angle=90)
    fl, fr = motion_facts(feats_l), motion_facts(feats_r)
    assert 60 < fl["heading_change_deg"] < 120
    assert -120 < fr["heading_change_deg"] < -60
    mirrored = process_file(mirror_joints(joints_l))[0]
    assert motion_facts(mirrored)["heading_change_deg"] < -60


def test_heading_sign_matches_caption_text(syn):
    """Read the dataset's own texts: captions saying left/counterclockwise turn positive."""
    checked = 0
    for txt in sorted((syn / "texts").glob("*.txt")):
        caps = [ln.split("#")[0] for ln in txt.read_text().splitlines() if ln.strip()]
        whole = [c for c, ln in zip(caps, txt.read_text().splitlines()) if ln.endswith("#0.0#0.0")]
        if len(whole) != len(caps):
            continue  # compositions: the turn is only part of the clip
        joined = " ".join(caps)
        if not re.search(r"turn|circle|curve|spin|veer|rotat", joined):
            continue
        left = re.search(r"\bleft\b|\bcounterclockwise\b", joined)
        right = re.search(r"\bright\b|(?<!counter)clockwise\b", joined)
        if bool(left) == bool(right):
            continue
        h = motion_facts(np.load(syn / "new_joint_vecs" / f"{txt.stem}.npy"))["heading_change_deg"]
        assert (h > 30) if left else (h < -30), (txt.stem, caps[0], h)
        checked += 1
    assert checked >= 2  # seed 5: a 180-degree right turn and its mirrored (left) copy


def test_circle_heading_is_robust():
    """A fast full circle: the stored root-yaw channel flips sign where the heading passes 180
    degrees; after the repair the body-facing measure sees ~360 degrees with the right sign."""
    feats, _, facts = _clip(actions.run, seed=0, path="circle")
    sign = 1 if facts["turn"] == "left" else -1
    f = motion_facts(feats)
    assert f["root_yaw_repairs"] == 1
    assert abs(f["heading_change_deg"] - sign * 360) < 20
    raw = np.degrees(np.diff(facing_angle(recover_from_ric(feats.astype(np.float64)), T2M)).sum())
    assert abs(raw - sign * 360) > 90  # without the repair the recovered joints turn ~200 degrees
    fixed, n = repair_root_yaw(np.array([[0.1], [0.1], [-0.3], [0.1], [0.1]]))
    assert n == 1 and fixed[2, 0] == pytest.approx(0.3)
    assert repair_root_yaw(np.array([[0.1], [0.2], [-0.1], [-0.2]]))[1] == 0  # a real reversal stays


def test_jump_airborne_and_walk_vs_wave():
    jump, _, jf = _clip(actions.jump, seed=2, forward=False)
    walk, _, _ = _clip(actions.walk, seed=3, path="straight", backward=False)
    wave, _, wvf = _clip(actions.wave, seed=4, side="right")
    squat, _, _ = _clip(actions.squat, seed=5)
    fj, fw, fv, fs = motion_facts(jump), motion_facts(walk), motion_facts(wave), motion_facts(squat)
    assert fj["airborne_frames"] > 0 and fj["jump_count"] == jf["times"]
    assert fw["airborne_frames"] == 0 and fv["airborne_frames"] == 0
    assert fw["path_length_m"] > 1.0 > 10 * fv["path_length_m"]
    assert fw["net_forward_m"] > 1.0 and fw["mean_speed_mps"] > 0.3
    assert fv["most_active_limb"] == "right_arm" and fv["arms_share"] > 0.8
    assert fw["most_active_limb"] in ("left_leg", "right_leg")
    assert fs["crouched"] and not fv["crouched"] and fs["crouch_depth_m"] > 0.15
    assert 0.0 <= fw["contact_ratio"] <= 1.0 and fv["contact_ratio"] > 0.9
    json.dumps(fj)  # plain JSON types only


def test_facts_from_joints_and_batch():
    feats, _, _ = _clip(actions.walk, seed=6, path="curve")
    f1 = motion_facts(feats)
    f2 = motion_facts(recover_from_ric(feats))  # joints input
    for k in ("duration_s", "path_length_m", "net_displacement_m", "heading_change_deg", "jump_count"):
        assert f2[k] == pytest.approx(f1[k], abs=1e-3)
    pad = np.zeros((2, len(feats) + 7, feats.shape[1]), np.float32)
    pad[0, :len(feats)] = feats
    pad[1, :len(feats) - 10] = feats[:-10]
    out = motion_facts_batch(pad, lengths=[len(feats), len(feats) - 10])
    assert out[0] == f1 and out[1]["num_frames"] == len(feats) - 10
    assert motion_facts(torch.from_numpy(feats)) == f1
    with pytest.raises(ValueError):
        motion_facts(np.zeros((10, 100)))


# ----------------------------------------------------------------------------- template reasoning
def test_parse_caption():
    p = parse_caption("a man kicks with his left leg three times, then raises arms into a t pose.")
    assert p["sequential"] and p["actions"][0] == "kicking"
    assert p["clauses"][0]["side"] == "left" and p["clauses"][0]["count"] == 3
    assert parse_caption("someone jogs clockwise in a circle")["clauses"][0]["direction"] == "in a clockwise circle"
    assert parse_caption("xyzzy plugh")["actions"] == []


def test_template_deterministic_and_clean():
    feats, _, _ = _clip(actions.turn, side="left", angle=90)
    facts = motion_facts(feats)
    tokens = [5, 6, 7] * 6
    caps = ["a person turns to the left.", "a figure waves with the right hand twice, then jumps forward.",
            "someone does something unusual."]
    r0, r1 = TemplateReasoner(seed=0), TemplateReasoner(seed=1)
    texts0, texts1 = [], []
    for i in range(12):
        for task in ("t2m", "m2t"):
            for c in caps:
                a = r0.reason(task, c, facts, tokens, f"id{i}", 0)
                assert a == TemplateReasoner(seed=0).reason(task, c, facts, tokens, f"id{i}", 0)
                texts0.append(a)
                texts1.append(r1.reason(task, c, facts, tokens, f"id{i}", 0))
                assert 8 <= len(a.split()) <= 80
                if task == "t2m":
                    assert "<" not in a and "Motion" not in a and not re.search(r"\b\d+(?: \d+){3,}", a)
    assert texts0 != texts1  # the seed changes the phrasing
    assert len(set(texts0)) > 6  # several phrasings
    m2t = r0.reason("m2t", caps[0], facts, tokens, "x", 0)
    assert "left" in m2t and "degrees" in m2t
    no_facts = r0.reason("t2m", caps[0], None, tokens, "x", 0)
    assert "3.6" in no_facts  # duration from the token count: 18 tokens * 4 frames / 20 fps


# ----------------------------------------------------------------------------- build_cot end to end
def test_build_cot_template_end_to_end(syn, vq_ckpt, tmp_path):
    out = tmp_path / "cot"
    rc = build_cot.main(["--vq-ckpt", str(vq_ckpt), "--data-root", str(syn), "--out-dir", str(out),
                         "--split", "train", "--with-val", "--no-progress", "--with-facts"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    for split in ("train", "val"):
        s = summary["splits"][split]
        assert s["errors"] == 0 and s["records"]["t2m"] == s["records"]["m2t"] == s["units"] > 0
        # one refine record (with a plan) per plain record by default, after the plain records
        assert s["refine_records"] == {"t2m": s["units"], "m2t": s["units"]} and s["refine_short"] == 0
        recs, stats = load_cot_records([out / f"t2m_{split}.jsonl", out / f"m2t_{split}.jsonl"], NB_CODE,
                                       return_stats=True)
        assert stats["task_t2m"] == stats["task_m2t"] == 2 * s["units"] and stats["skipped"] == 0
        assert stats["refine"] == 2 * s["units"]
        for r in recs:
            assert r["reasoning"] and all(0 <= c < NB_CODE for c in r["motion_tokens"])
            if r["plan"]:
                assert r["plan"] != r["reasoning"] and "<" not in r["plan"]
            if r["task"] == "m2t":
                assert r["answer"] == r["caption"]
            else:
                assert "<Motion" not in r["reasoning"]
            assert "facts" in r and r["facts"]["duration_s"] > 0
    # deterministic rebuild, captions-per-item and max-records
    first = (out / "t2m_train.jsonl").read_text()
    out2 = tmp_path / "cot2"
    assert build_cot.main(["--vq-ckpt", str(vq_ckpt), "--data-root", str(syn), "--out-dir", str(out2),
                           "--no-progress", "--with-facts"]) == 0
    assert (out2 / "t2m_train.jsonl").read_text() == first
    out3 = tmp_path / "cot3"
    assert build_cot.main(["--vq-ckpt", str(vq_ckpt), "--data-root", str(syn), "--out-dir", str(out3),
                           "--no-progress", "--captions-per-item", "1", "--max-records", "7",
                           "--tasks", "m2t"]) == 0
    s3 = json.loads((out3 / "summary.json").read_text())["splits"]["train"]
    assert s3["records"] == {"m2t": 7} and not (out3 / "t2m_train.jsonl").exists()
    ids = [r["id"] for r in _read(out3 / "m2t_train.jsonl") if "plan" not in r]
    assert len(ids) == len(set(ids)) == 7  # one caption per item
    out4 = tmp_path / "cot4"  # --refine-per-record 0: the plain records only, as before
    assert build_cot.main(["--vq-ckpt", str(vq_ckpt), "--data-root", str(syn), "--out-dir", str(out4),
                           "--no-progress", "--with-facts", "--refine-per-record", "0"]) == 0
    assert first.startswith((out4 / "t2m_train.jsonl").read_text())
    assert not any("plan" in r for r in _read(out4 / "t2m_train.jsonl"))


def test_build_cot_from_tokens_jsonl(syn, vq_ckpt, tmp_path):
    from prepare.tokenize_dataset import tokenize_split
    records, _ = tokenize_split(vq_ckpt, syn, "val", progress=False)
    tok = tmp_path / "tokens_val.jsonl"
    tok.write_text("".join(json.dumps(r) + "\n" for r in records))
    a, b = tmp_path / "a", tmp_path / "b"
    assert build_cot.main(["--tokens-jsonl", str(tok), "--nb-code", str(NB_CODE), "--data-root", str(syn),
                           "--split", "val", "--out-dir", str(a), "--no-progress"]) == 0
    assert build_cot.main(["--vq-ckpt", str(vq_ckpt), "--data-root", str(syn), "--split", "val",
                           "--out-dir", str(b), "--no-progress"]) == 0
    assert (a / "m2t_val.jsonl").read_text() == (b / "m2t_val.jsonl").read_text()
    with pytest.raises(SystemExit):
        build_cot.main(["--tokens-jsonl", str(tok), "--out-dir", str(a)])  # no nb_code source


# ----------------------------------------------------------------------------- openai reasoner (fake server)
class _FakeLLM:
    """Chat-completions stand-in: the first request for each prompt gets 429 (Retry-After 0) or a
    503, the next a canned completion derived from the prompt."""

    def __init__(self):
        self.calls, self.seen, self.auth = 0, {}, set()
        self.fail_all = False
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                key = hashlib.sha256(prompt.encode()).hexdigest()[:10]
                with fake.lock:
                    fake.calls += 1
                    n = fake.seen.get(key, 0)
                    fake.seen[key] = n + 1
                    fake.auth.add(self.headers.get("Authorization"))
                if self.path != "/v1/chat/completions" or fake.fail_all:
                    self._send(400, {"error": {"message": "bad request"}})
                elif n == 0:
                    code = 429 if int(key, 16) % 2 else 503
                    self._send(code, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
                else:
                    task = "plan" if "text-to-motion" in prompt else "observation"
                    self._send(200, {"choices": [{"message": {"role": "assistant",
                                                              "content": f" Canned {task} {key}. "}}]})

            def _send(self, code, obj, headers=None):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def fake_llm():
    srv = _FakeLLM()
    yield srv
    srv.close()


def test_openai_reasoner_retry_cache_resume(syn, vq_ckpt, tmp_path, fake_llm, monkeypatch):
    monkeypatch.setenv("FAKE_LLM_KEY", "sk-test")
    out, cache = tmp_path / "oa", tmp_path / "cache"
    base = ["--vq-ckpt", str(vq_ckpt), "--data-root", str(syn), "--out-dir", str(out), "--no-progress",
            "--reasoner", "openai", "--api-base", fake_llm.url, "--model", "fake-1", "--api-key-env", "FAKE_LLM_KEY",
            "--concurrency", "3", "--retry-base", "0.01", "--retry-max", "0.05", "--cache-dir", str(cache)]
    # run 1: 4 units x 2 tasks, every prompt fails once (429 or 503) and is retried
    assert build_cot.main(base + ["--max-records", "4"]) == 0
    s = json.loads((out / "summary.json").read_text())["splits"]["train"]
    assert s["records"] == {"t2m": 4, "m2t": 4} and s["errors"] == 0
    assert s["api"]["retries"] == 8 and s["api"]["api_calls"] == 16 and fake_llm.calls == 16
    assert fake_llm.auth == {"Bearer sk-test"}
    recs = load_cot_records([out / "t2m_train.jsonl", out / "m2t_train.jsonl"], NB_CODE)
    assert {r["task"] for r in recs} == {"t2m", "m2t"}
    for r in recs:
        assert r["reasoning"].startswith("Canned plan" if r["task"] == "t2m" else "Canned observation")
    # run 2 (resume, more records): the 8 existing records are skipped, 2 units x 2 tasks added
    with open(out / "m2t_train.jsonl", "a") as f:
        f.write('{"task": "m2t", "id": "trunc')  # a crash mid-line
    assert build_cot.main(base + ["--max-records", "6"]) == 0
    s = json.loads((out / "summary.json").read_text())["splits"]["train"]
    assert s["skipped_existing"] == 8 and s["records"] == {"t2m": 2, "m2t": 2}
    assert fake_llm.calls == 16 + 8
    t2m, m2t = _read(out / "t2m_train.jsonl"), _read(out / "m2t_train.jsonl")
    assert len(t2m) == len(m2t) == 12 and s["refine_records"] == {"t2m": 6, "m2t": 6}
    assert [("plan" in r) for r in m2t] == [False] * 6 + [True] * 6  # refine records rewritten after the plain ones
    assert len({(r["id"], r["caption_index"]) for r in m2t if "plan" not in r}) == 6
    assert all(r["plan"] != r["reasoning"] for r in m2t if "plan" in r)
    # run 3: outputs removed, the cache answers everything without HTTP calls
    (out / "t2m_train.jsonl").unlink()
    (out / "m2t_train.jsonl").unlink()
    assert build_cot.main(base + ["--max-records", "6"]) == 0
    s = json.loads((out / "summary.json").read_text())["splits"]["train"]
    assert s["records"] == {"t2m": 6, "m2t": 6} and s["api"].get("cache_hits") == 12
    assert fake_llm.calls == 24 and s["api"].get("api_calls", 0) == 0
    assert sorted(map(json.dumps, _read(out / "m2t_train.jsonl"))) == sorted(map(json.dumps, m2t))


def test_openai_reasoner_non_retryable_errors(syn, vq_ckpt, tmp_path, fake_llm):
    fake_llm.fail_all = True
    out = tmp_path / "oa_err"
    rc = build_cot.main(["--vq-ckpt", str(vq_ckpt), "--data-root", str(syn), "--out-dir", str(out),
                         "--no-progress", "--reasoner", "openai", "--api-base", fake_llm.url, "--model", "m",
                         "--max-records", "2", "--retry-base", "0.01", "--cache-dir", str(tmp_path / "c")])
    assert rc == 1
    s = json.loads((out / "summary.json").read_text())["splits"]["train"]
    assert s["errors"] == 4 and s["error_reasons"] == {"http_400": 4} and s["records"] == {"t2m": 0, "m2t": 0}
    assert fake_llm.calls == 4  # 400 is not retried


def test_clean_completion_rejects_tags():
    assert clean_completion("<think> plan here </think>") == "plan here"
    with pytest.raises(CompletionError):
        clean_completion("move <Motion_3>")
    with pytest.raises(CompletionError):
        clean_completion("   ")


# ----------------------------------------------------------------------------- dataset_cot
def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_dataset_cot_errors_name_file_and_line(tmp_path):
    good = '{"caption": "a man walks.", "motion_tokens": [1, 2, 3], "task": "t2m"}'
    cases = {
        '{"caption": "x", "motion_tokens": [1, 2,': ("bad_json", None),
        '{"motion_tokens": [1]}': ("missing_field", "caption"),
        '{"caption": "x"}': ("missing_field", "motion_tokens"),
        '{"caption": 3, "motion_tokens": [1]}': ("bad_type", "caption"),
        '{"caption": "x", "motion_tokens": [1, 32]}': ("out_of_range", "motion_tokens"),
        '{"caption": "x", "motion_tokens": [-1]}': ("out_of_range", "motion_tokens"),
        '{"caption": "x", "motion_tokens": [1.5]}': ("bad_type", "motion_tokens"),
        '{"caption": "x", "motion_tokens": "1 a"}': ("bad_type", "motion_tokens"),
        '{"caption": "x", "motion_tokens": [true]}': ("bad_type", "motion_tokens"),
        '{"caption": "x", "motion_tokens": []}': ("bad_value", "motion_tokens"),
        '{"caption": "  ", "motion_tokens": [1]}': ("bad_value", "caption"),
        '{"caption": "x", "motion_tokens": [1], "task": "foo"}': ("bad_value", "task"),
        '{"caption": "x", "motion_tokens": [1], "reasoning": 5}': ("bad_type", "reasoning"),
        '{"caption": "x", "motion_tokens": [1], "reward": "high"}': ("bad_type", "reward"),
        '{"caption": "x", "motion_tokens": [1], "advantage": NaN}': ("bad_value", "advantage"),
        '{"caption": "x", "motion_tokens": [1], "sample_weight": true}': ("bad_type", "sample_weight"),
        '{"caption": "x", "motion_tokens": [1], "sample_weight": -0.5}': ("bad_value", "sample_weight"),
        '{"caption": "x", "motion_tokens": [1], "plan": 3}': ("bad_type", "plan"),
        '{"caption": "x", "motion_tokens": [1], "plan": "  "}': ("bad_value", "plan"),
        '[1, 2]': ("not_object", None),
    }
    for i, (line, (reason, field)) in enumerate(cases.items()):
        p = _write(tmp_path / f"c{i}.jsonl", [good, "", line])
        with pytest.raises(CoTRecordError) as ei:
            load_cot_records(p, NB_CODE)
        msg = str(ei.value)
        assert msg.startswith(f"{p}:3:"), msg
        assert ei.value.reason == reason and ei.value.lineno == 3
        if field:
            assert f"'{field}'" in msg
        assert isinstance(ei.value, ValueError)


def test_dataset_cot_skip_mode_and_normalisation(tmp_path):
    p = _write(tmp_path / "mixed.jsonl", [
        '{"caption": "a man walks.", "motion_tokens": [1, 2, 3], "task": "t2m", "id": "000001", "extra": {"a": 1}}',
        '{"caption": " someone waves. ", "motion_tokens": "4 5  6", "reasoning": "arm up", "task": "m2t", "reward": 1}',
        '{"caption": "no task", "motion_tokens": [7]}',
        'not json',
        '{"caption": "x", "motion_tokens": [99]}',
        '{"caption": "x", "motion_tokens": [1], "task": "m2t", "answer": "other text", "sample_weight": 0.5}',
        '{"caption": "x"}',
    ])
    recs, stats = load_cot_records(p, NB_CODE, skip_bad_records=True, return_stats=True)
    assert len(recs) == 4 and stats["skipped"] == 3
    assert stats["bad_json"] == 1 and stats["out_of_range"] == 1 and stats["missing_field"] == 1
    r0, r1, r2, r3 = recs
    # an absent sample_weight stays None: SFT then falls back on reward / advantage (rl.sft.sample_weight)
    assert r0["extra"] == {"a": 1} and r0["reasoning"] == "" and r0["sample_weight"] is None
    assert r1["sample_weight"] is None and r0["plan"] is None
    assert r1["motion_tokens"] == [4, 5, 6] and r1["caption"] == "someone waves." and r1["reward"] == 1.0
    assert r1["answer"] == "someone waves." and r3["answer"] == "other text" and r3["sample_weight"] == 0.5
    assert r2["task"] is None
    # task filter: rows without a task always pass and get the default
    ds = CoTDataset(p, NB_CODE, task_filter="m2t", skip_bad_records=True, default_task="t2m")
    assert [r["caption"] for r in ds] == ["someone waves.", "no task", "x"]
    assert ds[1]["task"] == "t2m" and ds.stats["filtered"] == 1 and len(ds) == 3
    assert CoTDataset(p, NB_CODE, task_filter=["t2m", "m2t"], skip_bad_records=True).stats["filtered"] == 0
    with pytest.raises(ValueError):
        CoTDataset(p, NB_CODE, task_filter="x2y", skip_bad_records=True)
    with pytest.raises(FileNotFoundError):
        CoTDataset(tmp_path / "missing.jsonl", NB_CODE)
    assert validate_record({"caption": "a", "motion_tokens": "0 31"}, NB_CODE)["motion_tokens"] == [0, 31]
    with pytest.raises(ValueError, match="motion_tokens"):
        validate_record({"caption": "a", "motion_tokens": "0 32"}, NB_CODE)
