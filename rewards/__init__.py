"""RLVR rewards (docs/method.md §7): one module per reward, a shared batch/decoder interface
(:mod:`rewards.base`), the weighted combination
(:mod:`rewards.composite`) and the command-line builder (:mod:`rewards.factory`).

Heavy models (sentence encoder, NLI classifier, T2M evaluator) are loaded only when a reward
that needs them is built.
"""
from .base import DecodedMotion, LRUCache, MotionDecoder, Reward, RewardBatch, RewardOutput, motion_from_features
from .composite import CompositeReward, CompositeScore
from .factory import build_rewards
from .format_reward import FormatReward
from .physics import PhysicsConfig, PhysicsReward

__all__ = ["DecodedMotion", "LRUCache", "MotionDecoder", "Reward", "RewardBatch", "RewardOutput",
           "motion_from_features", "CompositeReward", "CompositeScore",
           "build_rewards", "FormatReward", "PhysicsConfig", "PhysicsReward"]
