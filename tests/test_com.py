"""Chain-of-Motion decoding: best-scored candidate over rounds, plans fed back, no reference in sight."""
import numpy as np
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


class _ReferenceSpy:
    """A reward that fails the run if the reference caption reaches it as a caption or an input."""
    name = "spy"

    def __init__(self, reference):
        self.reference, self.batches = reference, 0

    def score(self, batch):
        from rewards.base import RewardOutput
        self.batches += 1
        for field in (batch.captions, batch.input_codes):
            assert not any(self.reference in str(x) for x in field if x is not None), "the scorer saw the reference"
        return RewardOutput(np.asarray([len(p.answer) for p in batch.parsed], dtype=np.float64), {}, {})


class _EchoLLM(FakeLLM):
    """Candidates whose answers can repeat the reference (a model may legitimately produce it)."""

    def generate(self, task, **kw):
        outs = super().generate(task, **kw)
        for o in outs:
            o["text"] = f"{o['reasoning']}</think><answer>{o['answer']}</answer>"
        return outs


def test_scorer_never_reads_a_reference():
    """The production CoM scorer (rewards.callbacks.ComScorer) ranks on the model inputs only: the spy fails if
    the reference caption of the item reaches it; it is handed to chain_of_motion's inputs only through the
    item record, which the scorer must never receive."""
    from rewards.callbacks import ComScorer
    from rewards.composite import CompositeReward
    reference = "a person waves with the left hand."
    spy = _ReferenceSpy(reference)
    scorer = ComScorer(CompositeReward({"spy": (spy, 1.0)}))
    best, _ = chain_of_motion(_EchoLLM(), "m2t", [[1, 2, 3]], scorer, candidates=3, rounds=3)
    assert spy.batches == 3 and best[0]["answer"].startswith("caption")
    # t2m: the prompt caption is the input; passing the item's reference instead would trip the spy
    spy_t2m = _ReferenceSpy(reference)
    scorer = ComScorer(CompositeReward({"spy": (spy_t2m, 1.0)}))
    chain_of_motion(_EchoLLM(), "t2m", ["a person walks."], scorer, candidates=2, rounds=2)
    with pytest.raises(AssertionError, match="saw the reference"):
        chain_of_motion(_EchoLLM(), "t2m", [reference], scorer, candidates=2, rounds=1)  # the spy does fire


def test_update_best_and_bad_arguments():
    outs = [{"x": i} for i in range(6)]
    best = update_best([None, None], [0.1, 0.9, 0.2, 0.5, 0.4, 0.3], outs, 3)
    assert best == [(0.9, {"x": 1}), (0.5, {"x": 3})]
    best = update_best(best, [0.95, 0, 0, 0, 0, 0], outs, 3)
    assert best[0] == (0.95, {"x": 0}) and best[1] == (0.5, {"x": 3})  # the earlier winner is kept
    with pytest.raises(ValueError, match="at least 1"):
        chain_of_motion(FakeLLM(), "t2m", ["x"], lambda *a: [0], candidates=0)


def test_the_greedy_candidate_is_kept_unless_a_sample_scores_higher():
    llm = FakeLLM()  # call 0 = the greedy decode (codes 0 for j=0), then the rounds 1..2

    def prefers(n):
        return lambda task, inputs, outputs: [-abs(len(o["motion_codes"]) - n) for o in outputs]
    best, stats = chain_of_motion(llm, "t2m", ["walk"], prefers(0), candidates=3, rounds=2, include_greedy=True)
    assert llm.calls[0]["do_sample"] is False and all(c["do_sample"] for c in llm.calls[1:])
    assert len(best[0]["motion_codes"]) == 0 and stats["com_kept_greedy"] == 1  # nothing beat the greedy decode
    assert llm.calls[1]["plans"] is None and llm.calls[2]["plans"] == ["plan r0 c0 for 0"]  # its reasoning refined
    best, stats = chain_of_motion(FakeLLM(), "t2m", ["walk"], prefers(21), candidates=3, rounds=2,
                                  include_greedy=True)
    assert len(best[0]["motion_codes"]) == 21 and stats["com_kept_greedy"] == 0
