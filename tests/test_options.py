"""Every flag of the original release is accepted by the script that owned it (tests/data/
original_release_flags.json lists them per script), one source of defaults for the config dataclasses,
and --help says which flags have no effect."""
import json
from pathlib import Path

import pytest

FLAGS = json.loads((Path(__file__).parent / "data" / "original_release_flags.json").read_text())["flags"]


def _parsers():
    from options import option_llm, option_train, option_vq
    return {"train_mllm.py": option_train.get_args_parser, "eval_mllm.py": option_llm.get_args_parser,
            "demo.py": option_llm.get_demo_parser, "train_vq.py": option_vq.get_args_parser}


def _value_for(action):
    """A valid command-line value for an argparse action (None: a flag without value)."""
    if action.nargs == 0:
        return None
    if action.choices:
        return [str(c) for c in action.choices if c is not None][-1]
    typ = action.type or str
    v = {int: "3", float: "0.25"}.get(typ, "some_value")
    return [v, v] if action.nargs == "+" else v


@pytest.mark.parametrize("script", sorted(FLAGS))
def test_every_original_flag_is_accepted(script):
    parser = _parsers()[script]()
    known = parser._option_string_actions
    missing = [f for f in FLAGS[script] if f not in known]
    assert not missing, f"{script} rejects original flags {missing}"
    argv = []
    for flag in FLAGS[script]:
        action = known[flag]
        value = _value_for(action)
        one = [flag] if value is None else [flag] + ([value] if isinstance(value, str) else value)
        args = parser.parse_args(one)  # each flag alone ...
        if value is not None:
            got = getattr(args, action.dest)
            assert str(got if not isinstance(got, list) else got[0]) in (value if isinstance(value, list) else [value])
        argv += one
    parser.parse_args(argv)  # ... and all of them together


def test_no_effect_flags_say_so_in_help():
    from options import option_llm, option_train
    train = option_train.get_args_parser().format_help()
    assert "--down-t" in train and "read from --vq-ckpt" in train
    ev = option_llm.get_args_parser().format_help()
    for flag in ("--window-size", "--vis-gt", "--total-iter"):
        assert flag in ev
    assert "no effect" in ev and "read from the checkpoint" in ev


def test_config_dataclasses_take_their_defaults_from_one_place():
    from models.mllm import MLLMConfig
    from models.vqvae import VQConfig
    from options import option_train, option_vq
    from rl.grpo import GRPOConfig
    args = option_train.get_args_parser().parse_args([])
    args.com_refine_steps = 0
    cfg = GRPOConfig.from_args(args)
    d = GRPOConfig()
    for f in ("group_size", "clip_eps", "kl_coef", "inner_epochs", "temperature", "top_p", "max_new_tokens",
              "loss_norm", "component_norm", "micro_batch_size"):
        assert getattr(cfg, f) == getattr(d, f), f
    assert cfg.lr == args.learning_rate and cfg.com_rounds == 1
    m = MLLMConfig.from_args(args, nb_code=512)
    assert (m.lora_r, m.lora_alpha, m.lora_dropout, m.llm_backbone) == \
        (MLLMConfig().lora_r, MLLMConfig().lora_alpha, MLLMConfig().lora_dropout, MLLMConfig().llm_backbone)
    vq_args = option_vq.get_args_parser().parse_args(["--down-t", "3", "--width", "64"])
    v = VQConfig.from_args(vq_args)
    assert (v.down_t, v.width, v.nb_code, v.depth) == (3, 64, VQConfig().nb_code, VQConfig().depth)
    # a flag changes the config it maps to
    changed = option_train.get_args_parser().parse_args(["--rl-group-size", "5", "--rl-loss-norm", "token",
                                                         "--disable-rl-component-norm", "--com-refine-steps", "3"])
    c = GRPOConfig.from_args(changed)
    assert (c.group_size, c.loss_norm, c.component_norm, c.com_rounds) == (5, "token", False, 3)


def test_demo_and_eval_share_the_generation_flags_with_their_own_defaults():
    from options import option_llm
    ev = option_llm.get_args([])
    demo = option_llm.get_demo_args([])
    assert ev.do_sample is True and demo.do_sample is False  # eval samples (the original), the demo is greedy
    assert option_llm.get_args(["--greedy"]).do_sample is False
    assert option_llm.get_demo_args(["--do-sample"]).do_sample is True
    assert option_llm.get_demo_args(["--model-ckpt", "m.pth"]).eval_ckpt == "m.pth"
