"""Chain-of-Motion decoding: best-scored candidate over rounds, plans fed back, no reference in sight."""
import pytest

from models.com import chain_of_motion, update_best


class FakeLLM:
    """Deterministic stand-in for MotionLLM.generate: candidate j of round r has j + 10 * r codes."""

    def __init__(self):
        self.calls = []

    def generate(self, task, captions=None, motion_codes=None, plans=None, num_return_sequences=1, **kw):
        self.calls.append({"task": task, "captions": captions, "codes": motion_codes, "plans": plans, **kw})
        r = len(self.calls) - 1
        inputs = captions if task == "t2m" else motion_codes
        return [{"reasoning": f"plan r{r} c{j} for {i}", "answer": f"caption {r}.{j}", "well_formed": True,
                 "motion_codes": [1] * (j + 10 * r), "text": ""}
                for i in range(len(inputs)) for j in range(num_return_sequences)]


def test_returns_the_best_scored_candidate_over_rounds():
    llm = FakeLLM()

    def scorer(task, inputs, outputs):
        # prefers 12 codes: round 1 (10..13 codes) has it at j=2; round 0 (0..3) never does
        return [-abs(len(o["motion_codes"]) - 12) for o in outputs]
    best, stats = chain_of_motion(llm, "t2m", ["walk", "run"], scorer, candidates=4, rounds=2)
    assert len(llm.calls) == 2 and all(c["do_sample"] for c in llm.calls)
    assert llm.calls[0]["plans"] is None
    assert llm.calls[1]["plans"] == ["plan r0 c3 for 0", "plan r0 c3 for 1"]  # the best reasoning of round 1
    assert [len(b["motion_codes"]) for b in best] == [12, 12]
    assert stats["com_best_from_round"] == [0, 2] and stats["com_rounds"] == 2


def test_scorer_never_reads_a_reference():
    llm = FakeLLM()
    seen = []

    def scorer(task, inputs, outputs):
        seen.extend(inputs)
        assert all(isinstance(x, list) for x in inputs)  # m2t: the input motion codes only
        return [len(o["answer"]) for o in outputs]
    reference = "a person waves with the left hand."
    best, _ = chain_of_motion(llm, "m2t", [[1, 2, 3]], scorer, candidates=3, rounds=3)
    assert len(seen) == 9 and reference not in map(str, seen)
    assert best[0]["answer"].startswith("caption")


def test_update_best_and_bad_arguments():
    outs = [{"x": i} for i in range(6)]
    best = update_best([None, None], [0.1, 0.9, 0.2, 0.5, 0.4, 0.3], outs, 3)
    assert best == [(0.9, {"x": 1}), (0.5, {"x": 3})]
    best = update_best(best, [0.95, 0, 0, 0, 0, 0], outs, 3)
    assert best[0] == (0.95, {"x": 0}) and best[1] == (0.5, {"x": 3})  # the earlier winner is kept
    with pytest.raises(ValueError, match="at least 1"):
        chain_of_motion(FakeLLM(), "t2m", ["x"], lambda *a: [0], candidates=0)
