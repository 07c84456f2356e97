"""m2t R-precision and MM-Dist of captions through the T2M evaluator (docs/evaluation.md §3.1).

Captions (generated or real) are processed like the dataset texts (``utils.text_process``, spaCy
``word/POS`` with the released-text conventions, max 20 tokens) and embedded by the evaluator's
text encoder; motions are embedded from raw features (evaluator meta normalisation, padded to
196 frames, lengths cropped to a multiple of 4). Pairs are shuffled with a seed and ranked in
batches of 32 with drop_last. ``rows='motion'`` (default) is the TM2T orientation: each motion
ranks the 32 captions of its batch; ``rows='text'`` is the MotionGPT orientation.
"""
from __future__ import annotations

import numpy as np

from utils.metrics import matching_metrics


def caption_embeddings(wrapper, w_vectorizer, captions) -> np.ndarray:
    from utils.text_process import process_texts
    token_lists = process_texts(list(captions), allow_empty=True)
    return wrapper.embed_token_lists(token_lists, w_vectorizer).cpu().numpy()


def m2t_matching(wrapper, w_vectorizer, motions, captions, seed: int = 0, batch_size: int = 32,
                 rows: str = "motion", motion_embeddings: np.ndarray | None = None) -> dict:
    """R-precision top-1/2/3 and MM-Dist of ``captions[i]`` describing ``motions[i]``."""
    if len(captions) != (len(motions) if motion_embeddings is None else len(motion_embeddings)):
        raise ValueError("captions and motions differ in number")
    m = motion_embeddings if motion_embeddings is not None else wrapper.embed_raw_motions(list(motions)).cpu().numpy()
    t = caption_embeddings(wrapper, w_vectorizer, captions)
    perm = np.random.default_rng(seed).permutation(len(t))
    res = matching_metrics(t[perm], m[perm], batch_size=batch_size, rows=rows)
    res["orientation"] = f"{rows} rows"
    return res
