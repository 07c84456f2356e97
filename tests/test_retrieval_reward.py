"""The 'retrieval' consistency metric: a motion scores by how much nearer it is to its own caption than to
other captions (soft R-precision), so a generic motion close to every caption cannot game it."""
import numpy as np

from rewards.consistency import ConsistencyReward


def test_retrieval_rewards_the_specific_motion_not_the_generic_one():
    rng = np.random.default_rng(0)
    caps = [f"caption {i}" for i in range(40)]
    emb = rng.normal(size=(40, 16)) * 3
    r = ConsistencyReward(evaluator=None, word_vectorizer=None, metric="retrieval", negatives=31)
    for c, e in zip(caps, emb):
        r.text_cache.put(c, e)
    own = emb[5]
    specific = own + rng.normal(size=16) * 0.3          # near its caption
    generic = emb.mean(0)                                # near everything, the collapse a cosine reward allows
    wrong = emb[7] + rng.normal(size=16) * 0.3           # another caption's motion
    v = r.retrieval(["caption 5"] * 3, np.stack([own] * 3), np.stack([specific, generic, wrong]))
    # the specific motion is near 1; the generic one and another caption's motion are at chance (about 0.5)
    assert v[0] > 0.9 and v[1] < 0.7 and v[2] < 0.7
    assert ((0 <= v) & (v <= 1)).all()
    # only the most recent `negatives` other captions count; its own caption is never a negative
    r2 = ConsistencyReward(None, None, metric="retrieval", negatives=3)
    for c, e in zip(caps[:6], emb[:6]):
        r2.text_cache.put(c, e)
    v2 = r2.retrieval(["caption 5"], emb[5:6], emb[5:6])
    assert 0.5 < v2[0] <= 1.0
