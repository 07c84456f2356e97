"""Parametric action generators for the synthetic dataset (20 fps).

Every generator takes a numpy Generator and returns ``(Clip, facts)``; ``facts`` holds the
parameters the captions talk about (side, direction, speed, repetitions, ...).
"""
from __future__ import annotations

import numpy as np

from .body import Clip, FEET, KNEES_HANDS

FPS = 20.0


def _t(T):
    return np.arange(T) / FPS


def envelope(T, ramp):
    """0 -> 1 -> 0 with smooth ramps of ``ramp`` frames at both ends."""
    x = np.ones(T)
    ramp = max(1, min(ramp, T // 2))
    r = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    x[:ramp] = r
    x[-ramp:] = r[::-1]
    return x


def smoothstep(T, start, end):
    """0 before frame ``start``, 1 after ``end``, smooth in between."""
    f = np.arange(T, dtype=np.float64)
    x = np.clip((f - start) / max(end - start, 1), 0, 1)
    return x * x * (3 - 2 * x)


def pulses(T, n, lo=0.15, hi=0.85):
    """``n`` smooth 0->1->0 pulses spread over [lo, hi] of the clip; returns (T,) in [0, 1]."""
    f = np.linspace(0, 1, T)
    out = np.zeros(T)
    centers = np.linspace(lo, hi, n) if n > 1 else np.array([(lo + hi) / 2])
    width = (hi - lo) / max(n, 1) * 0.5 + 0.04
    for c in centers:
        out = np.maximum(out, np.exp(-0.5 * ((f - c) / (width / 2.2)) ** 2))
    return out


def _frames(rng, lo, hi):
    return int(rng.integers(lo, hi + 1))


SPEEDS = {"slow": 0.75, "normal": 1.0, "fast": 1.3}


def _gait(T, freq, hip, knee, arm, phase0=0.0, reverse=False):
    """Alternating leg/arm swing. Returns params dict. ``freq`` in strides per second."""
    ph = 2 * np.pi * freq * _t(T) + phase0
    if reverse:
        ph = ph[::-1]
    e = envelope(T, 8)
    p = {
        "hip_flex_l": hip * np.sin(ph) * e + 0.05,
        "hip_flex_r": hip * np.sin(ph + np.pi) * e + 0.05,
        "knee_l": 0.12 + knee * np.clip(np.cos(ph), 0, None) ** 1.5 * e,
        "knee_r": 0.12 + knee * np.clip(np.cos(ph + np.pi), 0, None) ** 1.5 * e,
        "sh_flex_l": -arm * np.sin(ph) * e,
        "sh_flex_r": -arm * np.sin(ph + np.pi) * e,
        "elbow_l": np.full(T, 0.3),
        "elbow_r": np.full(T, 0.3),
        "sh_abd_l": np.full(T, 0.08),
        "sh_abd_r": np.full(T, 0.08),
    }
    # reversed: the phase runs backwards, so the knee bends while the leg swings backwards (cos > 0
    # now means the hip extends) and the planted, straight leg moves forwards under the pelvis
    return p


# ---------------------------------------------------------------------------- locomotion
def walk(rng):
    speed = rng.choice(list(SPEEDS))
    path = rng.choice(["straight", "straight", "curve", "circle"])
    backward = bool(rng.random() < 0.2) and path == "straight"
    T = _frames(rng, 60, 190)
    s = SPEEDS[speed]
    p = _gait(T, 0.9 * s, 0.32 * s, 0.65 * s, 0.3 * s, reverse=backward)
    facts = {"action": "walk", "speed": speed, "path": path, "backward": backward}
    yaw = None
    if path == "curve":
        turn = rng.choice(["left", "right"])
        ang = rng.uniform(0.6, 1.6) * (1 if turn == "left" else -1)
        yaw = ang * smoothstep(T, T * 0.1, T * 0.9)
        facts["turn"] = turn
    elif path == "circle":
        turn = rng.choice(["left", "right"])
        yaw = 2 * np.pi * (1 if turn == "left" else -1) * smoothstep(T, 0, T)
        facts["turn"] = turn
        facts["rotation"] = "counterclockwise" if turn == "left" else "clockwise"
    return Clip(T, p, yaw=yaw), facts


def run(rng):
    speed = rng.choice(["normal", "fast"])
    path = rng.choice(["straight", "straight", "circle"])
    T = _frames(rng, 50, 160)
    s = SPEEDS[speed]
    p = _gait(T, 1.35 * s, 0.6, 1.5, 0.6)
    p["elbow_l"] = np.full(T, 1.4)
    p["elbow_r"] = np.full(T, 1.4)
    p["spine_bend"] = 0.25 * envelope(T, 8)
    facts = {"action": "run", "speed": speed, "path": path}
    yaw = None
    if path == "circle":
        turn = rng.choice(["left", "right"])
        yaw = 2 * np.pi * (1 if turn == "left" else -1) * smoothstep(T, 0, T)
        facts["turn"] = turn
        facts["rotation"] = "counterclockwise" if turn == "left" else "clockwise"
    return Clip(T, p, yaw=yaw), facts


def side_step(rng):
    """Steps to one side: the lead leg abducts while lifted, the trailing leg follows. The lateral
    translation is explicit (one step width per step) rather than stance-locked, so the direction
    always matches the caption."""
    side = rng.choice(["left", "right"])
    steps = int(rng.integers(2, 5))
    T = int(np.clip(steps * 22 + 24, 50, 190))
    ph = np.linspace(0, 2 * np.pi * steps, T)
    e = envelope(T, 6)
    lead = 0.25 * np.clip(np.sin(ph), 0, None) * e        # lead leg opens while lifted
    trail = 0.25 * np.clip(np.sin(ph - np.pi), 0, None) * e  # then the trailing leg closes in
    lift_lead = 0.6 * np.clip(np.sin(ph), 0, None) * e
    lift_trail = 0.6 * np.clip(np.sin(ph - np.pi), 0, None) * e
    a, b = ("l", "r") if side == "left" else ("r", "l")
    p = {f"hip_abd_{a}": lead, f"hip_abd_{b}": -0.5 * trail, f"knee_{a}": 0.1 + lift_lead,
         f"knee_{b}": 0.1 + lift_trail, f"hip_flex_{a}": 0.3 * lift_lead, f"hip_flex_{b}": 0.3 * lift_trail,
         "elbow_l": np.full(T, 0.4), "elbow_r": np.full(T, 0.4)}
    step_len = 0.35  # metres per step, +X is the person's left
    speed = np.gradient(np.linspace(0, steps * step_len, T)) * e
    drift = np.zeros((T, 2))
    drift[:, 0] = speed if side == "left" else -speed
    return Clip(T, p, drift=drift, lock=False), {"action": "side_step", "side": side, "times": steps}


def turn(rng):
    side = rng.choice(["left", "right"])
    angle = rng.choice([90, 180, 180, 360])
    T = _frames(rng, 45, 110) if angle < 360 else _frames(rng, 70, 140)
    steps_f = 1.0
    ph = 2 * np.pi * steps_f * _t(T)
    e = envelope(T, 6) * smoothstep(T, 2, 8)
    p = {"hip_flex_l": 0.25 * np.clip(np.sin(ph), 0, None) * e,
         "hip_flex_r": 0.25 * np.clip(np.sin(ph + np.pi), 0, None) * e,
         "knee_l": 0.1 + 0.45 * np.clip(np.sin(ph), 0, None) * e,
         "knee_r": 0.1 + 0.45 * np.clip(np.sin(ph + np.pi), 0, None) * e,
         "elbow_l": np.full(T, 0.3), "elbow_r": np.full(T, 0.3)}
    yaw = np.deg2rad(angle) * (1 if side == "left" else -1) * smoothstep(T, T * 0.1, T * 0.85)
    return Clip(T, p, yaw=yaw), {"action": "turn", "side": side, "angle": int(angle)}


def crawl(rng):
    T = _frames(rng, 80, 190)
    speed = rng.choice(["slow", "normal"])
    f = 0.5 * SPEEDS[speed]
    ph = 2 * np.pi * f * _t(T)
    pitch = 1.35
    e = envelope(T, 10)
    down = smoothstep(T, 0, 20)
    p = {
        "pelvis_pitch": pitch * down,
        "hip_flex_l": (pitch + 0.25 * np.sin(ph) * e) * down,
        "hip_flex_r": (pitch + 0.25 * np.sin(ph + np.pi) * e) * down,
        "knee_l": 1.5 * down, "knee_r": 1.5 * down,
        "sh_flex_l": (pitch + 0.25 * np.sin(ph + np.pi) * e) * down,
        "sh_flex_r": (pitch + 0.25 * np.sin(ph) * e) * down,
        "neck_bend": -0.6 * down, "ankle_l": -0.5 * down, "ankle_r": -0.5 * down,
    }
    clip = Clip(T, p, contacts=list(FEET) + list(KNEES_HANDS))
    return clip, {"action": "crawl", "speed": speed}


# ---------------------------------------------------------------------------- whole body
def jump(rng):
    times = int(rng.integers(1, 4))
    forward = bool(rng.random() < 0.4)
    T = int(np.clip(times * 30 + 30, 45, 190))
    f = np.arange(T)
    starts = np.linspace(15, T - 30, times).astype(int)
    crouch, air = np.zeros(T), np.zeros(T)
    drift = np.zeros((T, 2))
    h = rng.uniform(0.15, 0.35)
    for s in starts:
        crouch = np.maximum(crouch, np.exp(-0.5 * ((f - s) / 3.0) ** 2))  # take-off crouch
        crouch = np.maximum(crouch, np.exp(-0.5 * ((f - s - 14) / 3.0) ** 2))  # landing
        u = (f - s - 3) / 9.0
        m = (u > 0) & (u < 1)
        air[m] = np.maximum(air[m], h * 4 * u[m] * (1 - u[m]))
        if forward:
            drift[m, 1] = 0.5 / 9.0
    p = {"hip_flex_l": 0.9 * crouch, "hip_flex_r": 0.9 * crouch, "knee_l": 1.5 * crouch,
         "knee_r": 1.5 * crouch, "spine_bend": 0.4 * crouch,
         "sh_flex_l": -0.5 * crouch + 1.2 * (air > 0), "sh_flex_r": -0.5 * crouch + 1.2 * (air > 0),
         "ankle_l": -0.6 * (air > 0), "ankle_r": -0.6 * (air > 0)}
    for k in ("sh_flex_l", "sh_flex_r", "ankle_l", "ankle_r"):
        p[k] = np.convolve(p[k], np.ones(5) / 5, mode="same")
    return Clip(T, p, air=air, drift=drift), {"action": "jump", "times": times, "forward": forward}


def jumping_jacks(rng):
    times = int(rng.integers(2, 6))
    T = int(np.clip(times * 18 + 20, 45, 190))
    ph = np.linspace(0, 2 * np.pi * times, T)
    e = envelope(T, 8)
    o = (0.5 - 0.5 * np.cos(ph)) * e
    air = 0.06 * np.abs(np.sin(ph)) * e
    p = {"sh_abd_l": 2.8 * o, "sh_abd_r": 2.8 * o, "hip_abd_l": 0.3 * o, "hip_abd_r": 0.3 * o,
         "knee_l": 0.1 + 0.2 * (1 - o) * e, "knee_r": 0.1 + 0.2 * (1 - o) * e}
    return Clip(T, p, air=air), {"action": "jumping_jacks", "times": times}


def squat(rng):
    times = int(rng.integers(1, 4))
    T = int(np.clip(times * 35 + 20, 45, 190))
    d = pulses(T, times)
    depth = rng.uniform(0.8, 1.0)
    p = {"hip_flex_l": 1.6 * d * depth, "hip_flex_r": 1.6 * d * depth, "knee_l": 2.0 * d * depth,
         "knee_r": 2.0 * d * depth, "ankle_l": -0.5 * d * depth, "ankle_r": -0.5 * d * depth,
         "spine_bend": 0.5 * d, "sh_flex_l": 1.4 * d, "sh_flex_r": 1.4 * d}
    return Clip(T, p), {"action": "squat", "times": times}


def sit_down(rng):
    T = _frames(rng, 60, 140)
    stand_up = bool(rng.random() < 0.35)
    s = smoothstep(T, T * 0.15, T * 0.6)
    lean = np.exp(-0.5 * ((np.arange(T) - T * 0.4) / (T * 0.12)) ** 2)
    if stand_up:
        s, lean = s[::-1].copy(), lean[::-1].copy()
    p = {"hip_flex_l": 1.5 * s, "hip_flex_r": 1.5 * s, "knee_l": 1.5 * s, "knee_r": 1.5 * s,
         "spine_bend": 0.7 * lean + 0.1 * s, "sh_flex_l": 0.3 * s, "sh_flex_r": 0.3 * s,
         "elbow_l": 1.2 * s, "elbow_r": 1.2 * s}
    return Clip(T, p), {"action": "stand_up" if stand_up else "sit_down"}


def bow(rng):
    times = int(rng.integers(1, 3))
    T = int(np.clip(times * 40 + 20, 45, 150))
    d = pulses(T, times)
    p = {"spine_bend": 1.0 * d, "hip_flex_l": 0.5 * d, "hip_flex_r": 0.5 * d, "neck_bend": 0.3 * d}
    return Clip(T, p), {"action": "bow", "times": times}


def lunge(rng):
    side = rng.choice(["left", "right"])
    times = int(rng.integers(1, 3))
    T = int(np.clip(times * 45 + 20, 50, 180))
    d = pulses(T, times)
    lead, back = ("l", "r") if side == "left" else ("r", "l")
    p = {f"hip_flex_{lead}": 1.3 * d, f"knee_{lead}": 1.4 * d, f"hip_flex_{back}": -0.4 * d,
         f"knee_{back}": 1.3 * d, "spine_bend": 0.1 * d, f"ankle_{back}": -0.7 * d}
    return Clip(T, p), {"action": "lunge", "side": side, "times": times}


def hop(rng):
    side = rng.choice(["left", "right"])
    times = int(rng.integers(2, 6))
    T = int(np.clip(times * 14 + 30, 45, 160))
    f = np.arange(T)
    lift = smoothstep(T, 2, 12) * (1 - smoothstep(T, T - 12, T - 2))
    other = "r" if side == "left" else "l"
    air = np.zeros(T)
    for s in np.linspace(14, T - 22, times).astype(int):
        u = (f - s) / 8.0
        m = (u > 0) & (u < 1)
        air[m] = 0.12 * 4 * u[m] * (1 - u[m])
    p = {f"knee_{other}": 1.6 * lift, f"hip_flex_{other}": 0.5 * lift, "sh_abd_l": 0.5 * lift,
         "sh_abd_r": 0.5 * lift}
    clip = Clip(T, p, air=air, contacts=[7, 10] if side == "left" else [8, 11])
    return clip, {"action": "hop", "side": side, "times": times}


def dance(rng):
    T = _frames(rng, 80, 190)
    ph = 2 * np.pi * 1.0 * _t(T)
    e = envelope(T, 10)
    p = {"spine_side": 0.35 * np.sin(ph) * e, "sh_abd_l": (1.2 + 0.9 * np.sin(ph)) * e,
         "sh_abd_r": (1.2 - 0.9 * np.sin(ph)) * e, "elbow_l": 0.8 * e, "elbow_r": 0.8 * e,
         "knee_l": 0.1 + 0.35 * np.clip(np.sin(ph), 0, None) * e,
         "knee_r": 0.1 + 0.35 * np.clip(-np.sin(ph), 0, None) * e,
         "hip_abd_l": 0.12 * e, "hip_abd_r": 0.12 * e}
    return Clip(T, p), {"action": "dance"}


def march(rng):
    times = int(rng.integers(3, 7))
    T = int(np.clip(times * 20 + 20, 50, 190))
    ph = np.linspace(0, 2 * np.pi * times / 2, T)
    e = envelope(T, 8)
    p = {"hip_flex_l": 1.2 * np.clip(np.sin(ph), 0, None) * e,
         "hip_flex_r": 1.2 * np.clip(-np.sin(ph), 0, None) * e,
         "knee_l": 0.1 + 1.5 * np.clip(np.sin(ph), 0, None) * e,
         "knee_r": 0.1 + 1.5 * np.clip(-np.sin(ph), 0, None) * e,
         "sh_flex_l": 0.6 * np.sin(ph + np.pi) * e, "sh_flex_r": 0.6 * np.sin(ph) * e,
         "elbow_l": np.full(T, 1.3), "elbow_r": np.full(T, 1.3)}
    return Clip(T, p), {"action": "march", "times": times}


# ---------------------------------------------------------------------------- legs / arms
def kick(rng):
    side = rng.choice(["left", "right"])
    times = int(rng.integers(1, 4))
    high = bool(rng.random() < 0.4)
    T = int(np.clip(times * 25 + 25, 45, 150))
    d = pulses(T, times)
    s = "l" if side == "left" else "r"
    amp = 1.6 if high else 1.1
    knee = 1.3 * np.clip(d * (1 - d) * 4, 0, 1) * (d < 0.95)
    p = {f"hip_flex_{s}": amp * d, f"knee_{s}": knee + 0.05, "sh_abd_l": 0.3 * d, "sh_abd_r": 0.3 * d,
         "spine_bend": -0.15 * d}
    return Clip(T, p), {"action": "kick", "side": side, "times": times, "high": high}


def _arm(side):
    return "l" if side == "left" else "r"


def wave(rng):
    side = rng.choice(["left", "right", "left", "right", "both"])
    times = int(rng.integers(2, 6))
    T = int(np.clip(times * 10 + 40, 45, 150))
    up = smoothstep(T, 3, 15) * (1 - smoothstep(T, T - 15, T - 3))
    osc = np.sin(np.linspace(0, 2 * np.pi * times, T)) * up
    p = {}
    for sd in (["left", "right"] if side == "both" else [side]):
        a = _arm(sd)
        p[f"sh_abd_{a}"] = 2.3 * up + 0.35 * osc
        p[f"elbow_{a}"] = 0.6 * up + 0.3 * osc
    return Clip(T, p), {"action": "wave", "side": side, "times": times}


def punch(rng):
    side = rng.choice(["left", "right", "both"])
    times = int(rng.integers(2, 6))
    T = int(np.clip(times * 14 + 30, 45, 160))
    guard = smoothstep(T, 2, 10) * (1 - smoothstep(T, T - 10, T - 2))
    p = {"elbow_l": 2.2 * guard, "elbow_r": 2.2 * guard, "sh_flex_l": 0.9 * guard, "sh_flex_r": 0.9 * guard,
         "knee_l": 0.25 * guard, "knee_r": 0.25 * guard}
    n_sides = ["left", "right"] if side == "both" else [side]
    centers = np.linspace(0.2, 0.8, times)
    f = np.linspace(0, 1, T)
    twist = np.zeros(T)
    for i, c in enumerate(centers):
        sd = n_sides[i % len(n_sides)]
        a = _arm(sd)
        d = np.exp(-0.5 * ((f - c) / 0.025) ** 2)
        p[f"elbow_{a}"] = p[f"elbow_{a}"] * (1 - d)
        p[f"sh_flex_{a}"] = p[f"sh_flex_{a}"] + 0.7 * d
        twist += (0.3 if sd == "left" else -0.3) * -d
    p["spine_twist"] = twist
    return Clip(T, p), {"action": "punch", "side": side, "times": times}


def raise_arms(rng):
    side = rng.choice(["both", "both", "left", "right"])
    T = _frames(rng, 50, 120)
    up = smoothstep(T, T * 0.1, T * 0.4) * (1 - smoothstep(T, T * 0.65, T * 0.95))
    p = {}
    for sd in (["left", "right"] if side == "both" else [side]):
        p[f"sh_flex_{_arm(sd)}"] = 2.9 * up
    return Clip(T, p), {"action": "raise_arms", "side": side}


def clap(rng):
    times = int(rng.integers(2, 7))
    T = int(np.clip(times * 9 + 36, 45, 130))
    up = smoothstep(T, 2, 14) * (1 - smoothstep(T, T - 14, T - 2))
    osc = 0.5 - 0.5 * np.cos(np.linspace(0, 2 * np.pi * times, T))
    p = {"sh_flex_l": 1.2 * up, "sh_flex_r": 1.2 * up, "elbow_l": 0.7 * up, "elbow_r": 0.7 * up,
         "sh_horiz_l": (0.75 * osc - 0.1) * up, "sh_horiz_r": (0.75 * osc - 0.1) * up}
    return Clip(T, p), {"action": "clap", "times": times}


def throw(rng):
    side = rng.choice(["left", "right"])
    T = _frames(rng, 50, 100)
    a = _arm(side)
    wind = smoothstep(T, T * 0.15, T * 0.45)
    release = smoothstep(T, T * 0.45, T * 0.55)
    rest = smoothstep(T, T * 0.7, T * 0.95)
    flex = (-0.8 * wind + 3.4 * release) * (1 - rest)
    p = {f"sh_flex_{a}": flex, f"sh_abd_{a}": 0.6 * wind * (1 - rest), f"elbow_{a}": 1.2 * wind * (1 - release),
         "spine_twist": (0.5 * wind - 0.9 * release) * (1 - rest) * (1 if side == "right" else -1),
         "spine_bend": 0.3 * release * (1 - rest)}
    lead = "l" if side == "right" else "r"
    p[f"hip_flex_{lead}"] = 0.4 * wind * (1 - rest)
    p[f"knee_{lead}"] = 0.3 * wind * (1 - rest)
    return Clip(T, p), {"action": "throw", "side": side}


def stretch(rng):
    T = _frames(rng, 50, 120)
    up = smoothstep(T, T * 0.1, T * 0.35) * (1 - smoothstep(T, T * 0.7, T * 0.95))
    p = {"sh_abd_l": 1.55 * up, "sh_abd_r": 1.55 * up, "spine_bend": -0.15 * up, "neck_bend": -0.2 * up}
    return Clip(T, p), {"action": "stretch"}


ACTIONS = {
    "walk": walk, "run": run, "side_step": side_step, "turn": turn, "crawl": crawl, "jump": jump,
    "jumping_jacks": jumping_jacks, "squat": squat, "sit_down": sit_down, "bow": bow, "lunge": lunge,
    "hop": hop, "dance": dance, "march": march, "kick": kick, "wave": wave, "punch": punch,
    "raise_arms": raise_arms, "clap": clap, "throw": throw, "stretch": stretch,
}
# relative sampling weights (locomotion is most common in HumanML3D)
WEIGHTS = {"walk": 3.0, "run": 1.5, "jump": 1.5, "kick": 1.2, "wave": 1.2, "turn": 1.0}


def sample_action(rng, exclude=()):
    names = [n for n in ACTIONS if n not in exclude]
    w = np.array([WEIGHTS.get(n, 1.0) for n in names])
    name = names[int(rng.choice(len(names), p=w / w.sum()))]
    return ACTIONS[name](rng)


def concat(c1: Clip, c2: Clip, blend: int = 10) -> Clip:
    """Concatenate two clips with a cross-fade of ``blend`` frames; heading continues."""
    T = c1.T + c2.T - blend
    keys = set(c1.params) | set(c2.params)
    w = np.zeros(T)
    w[c1.T - blend:c1.T] = np.linspace(0, 1, blend)
    w[c1.T:] = 1.0
    def pad(a1, a2):
        x1 = np.concatenate([a1, np.repeat(a1[-1:], T - c1.T, axis=0)])
        x2 = np.concatenate([np.repeat(a2[:1], c1.T - blend, axis=0), a2])
        ww = w.reshape((-1,) + (1,) * (a1.ndim - 1))
        return x1 * (1 - ww) + x2 * ww
    params = {k: pad(c1.get(k), c2.get(k)) for k in keys}
    yaw = pad(c1.yaw_arr(), c2.yaw_arr() + c1.yaw_arr()[-1])
    air = pad(c1.air_arr(), c2.air_arr())
    drift = pad(c1.drift_arr(), c2.drift_arr())
    contacts = sorted(set(c1.contacts) | set(c2.contacts))
    lock = np.where(w < 0.5, c1.lock_arr()[np.minimum(np.arange(T), c1.T - 1)],
                    c2.lock_arr()[np.clip(np.arange(T) - (c1.T - blend), 0, c2.T - 1)])
    return Clip(T, params, yaw=yaw, air=air, drift=drift, contacts=contacts, lock=lock)
