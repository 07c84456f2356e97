"""What both training stages share: processes and the run folder, the policy (built from flags or
loaded from a checkpoint), DDP/FSDP wrapping and the optimizer state in checkpoints."""
from __future__ import annotations

from pathlib import Path

from models.mllm import MLLMConfig, MotionLLM
from utils.distributed import setup_process
from utils.io import atomic_write_json, prepare_run_dir, refuse_existing_run, run_dir


def latest_checkpoint(exp_dir: Path, args) -> Path:
    """The checkpoint ``--resume`` continues from: ``motionllm_<task>_latest.pth`` (SFT) or
    ``motionllm_rlvr_latest.pth`` (RLVR)."""
    name = f"motionllm_{args.training_task}_latest.pth" if args.train_stage == "sft" else "motionllm_rlvr_latest.pth"
    return Path(exp_dir) / name


INPUT_FILE_FLAGS = ("cot_train_jsonl", "cot_val_jsonl", "init_ckpt", "rl_reference_ckpt", "vq_ckpt")


def check_input_files(args):
    """Every input file a flag names exists (checked before the run folder or the backbone is touched)."""
    for name in INPUT_FILE_FLAGS:
        value = getattr(args, name, None)
        for path in ([value] if isinstance(value, str) else value or []):
            if not Path(path).is_file():
                flag = "--" + name.replace("_", "-")
                raise SystemExit(f"{flag} {path}: file not found" + (" (or not a file)" if Path(path).exists() else ""))


def check_run(args) -> tuple:
    """The checks that cost nothing and change nothing, before any input is read: the run folder's name,
    an existing run (refused without --resume/--overwrite), something to resume, the input files.
    Returns (exp_dir, latest)."""
    exp_dir = run_dir(args.out_dir, args.exp_name)
    latest = latest_checkpoint(exp_dir, args)
    if args.resume and not latest.is_file():
        raise SystemExit(f"--resume: nothing to resume, {latest} does not exist (drop --resume to start a new run)")
    refuse_existing_run(exp_dir, args.resume, args.overwrite)
    check_input_files(args)
    return exp_dir, latest


def setup_run(args, checked: tuple | None = None):
    """Checks (:func:`check_run`, unless its result is given as ``checked``), processes, seed, device and the
    run folder. Every rank uses the same seed (identical initial weights); a multi-process run takes its device
    from accelerate. Returns (device, exp_dir, dist, latest): ``latest`` is the stage's resume checkpoint,
    which exists whenever ``--resume`` is given."""
    exp_dir, latest = checked or check_run(args)
    dist, device = setup_process(args)
    prepare_run_dir(exp_dir, resume=args.resume, overwrite=args.overwrite, dist=dist)
    dist.barrier()
    if dist.enabled:
        print(f"rank {dist.rank}/{dist.world_size} on {device} ({dist.backend})")
    return device, exp_dir, dist, latest


def resolve_nb_code(args) -> int:
    """The codebook size: the VQ checkpoint's when ``--vq-ckpt`` is given, else ``--nb-code``."""
    if args.vq_ckpt:
        from models.vqvae import load_vq
        nb = load_vq(args.vq_ckpt).nb_code
        if nb != args.nb_code:
            print(f"--nb-code set to {nb} from the VQ checkpoint {args.vq_ckpt}")
        return nb
    return args.nb_code


def load_policy(args, device, ckpt=None, nb_code: int | None = None) -> MotionLLM:
    """The MotionLLM to train: the adapters of ``ckpt`` (its recorded backbone unless ``--llm-backbone``
    is given), or a new model from the LLM/LoRA flags with ``nb_code`` motion tokens."""
    kw = dict(device=device, dtype=args.dtype, gradient_checkpointing=args.gradient_checkpointing,
              attn_implementation=args.attn_implementation)
    if ckpt is not None:
        model = MotionLLM.from_checkpoint(ckpt, llm_backbone=args.llm_backbone, **kw)
        if nb_code is not None and model.cfg.nb_code != nb_code:
            raise ValueError(f"{ckpt} has {model.cfg.nb_code} motion tokens but the VQ-VAE/--nb-code has {nb_code}")
        return model
    return MotionLLM(MLLMConfig.from_args(args, nb_code), **kw)


def prepare_parallel(model: MotionLLM, dist, args):
    """DDP over the processes (default) or FSDP2 sharding of the backbone (``--fsdp``), then the optional
    ``torch.compile``. Call once the task, reference adapter and checkpoint weights are in place."""
    if args.fsdp and dist.enabled:
        model.enable_fsdp(dist, bf16=args.bf16)
    else:
        if args.fsdp:
            print("--fsdp ignored: a single process (launch with torchrun / accelerate launch)")
        model.enable_data_parallel(dist)
    if args.torch_compile:
        model.enable_compile()


def optimizer_state(model: MotionLLM, optimizer, dist) -> dict:
    """The optimizer state to checkpoint (gathered to full tensors under FSDP: every rank calls)."""
    if dist.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict
        return get_optimizer_state_dict(model.model, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def load_optimizer_state(model: MotionLLM, optimizer, state: dict, dist):
    if dist.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
        set_optimizer_state_dict(model.model, optimizer, state, options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(state)


def finish_distributed(model: MotionLLM, dist, exp_dir: Path) -> dict:
    """Gather a checksum of every rank's trainable weights (they must be identical) into
    ``distributed.json`` (rank 0)."""
    if not dist.enabled:
        return {}
    sums = dist.weights_checksums(model.trainable_parameters())
    info = {**dist.describe(), "trainable_checksums": sums, "in_sync": len(set(sums)) == 1}
    if dist.is_main:
        atomic_write_json(exp_dir / "distributed.json", info)
        if not info["in_sync"]:
            print(f"WARNING: ranks ended with different weights: {sums}")
    dist.barrier()
    return info
