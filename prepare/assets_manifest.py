"""The asset manifest of prepare/download.py: what each asset is, where it goes, and where it comes from.

Every Google-Drive id below is the one a public project's own download script uses (named in ``origin``);
no checksums are published for these files, so ``sha256`` is None everywhere (the downloader prints and
records the sha256 of what arrived; pin it with MORL_<ASSET>_SHA256).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Source:
    """One place an asset's archive can be fetched from."""
    origin: str                      # where the URL comes from (a project's script, an env var)
    url: str
    filename: str                    # the archive's name (cache file name, MORL_MIRROR lookup)
    archive: str                     # "zip", "tar" (any compression) or "file" (no unpacking)
    sha256: Optional[str] = None     # expected checksum of the whole archive, when known
    page: Optional[str] = None       # where a person can download it in a browser


@dataclass(frozen=True)
class Item:
    """One installable folder."""
    name: str
    dest: str                        # relative to --root
    description: str
    expected: tuple                  # files that must exist under the unpacked folder
    sources: tuple                   # Source, primary first
    filename: str                    # archive name used with MORL_<ASSET>_URL when the URL has none
    archive: str
    folder_hint: str = ""            # preferred name of the folder holding the files inside an archive
    dataset_name: str = ""           # for the evaluators: dataset_name in Comp_v6_KLD005/opt.txt
    recommended: tuple = ()          # files the project reads but that not every archive ships
    note: str = ""


def gdrive(file_id: str, filename: str, archive: str, origin: str, sha256: Optional[str] = None) -> Source:
    """A Google-Drive file: the direct usercontent URL (confirm=t skips the virus-scan page of large files
    most of the time; when Drive still answers with its confirmation form, the form is parsed)."""
    url = f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"
    return Source(origin, url, filename, archive, sha256, page=f"https://drive.google.com/file/d/{file_id}/view")


# No checksums are published for any of these files, so sha256 is None everywhere: the downloader
# prints the sha256 of what arrived and writes it to <dest>/.download.json; pin it with MORL_<ASSET>_SHA256.
_EVAL_FILES = ("text_mot_match/model/finest.tar", "Comp_v6_KLD005/opt.txt")
_EVAL_META = ("Comp_v6_KLD005/meta/mean.npy", "Comp_v6_KLD005/meta/std.npy")

MANIFEST = {
    "extractor-t2m": Item(
        name="extractor-t2m", dest="checkpoints/t2m",
        description="T2M text/motion evaluator for HumanML3D (Guo et al. 2022), as repackaged by T2M-GPT",
        expected=_EVAL_FILES, recommended=_EVAL_META, filename="t2m.zip", archive="zip",
        folder_hint="t2m", dataset_name="t2m",
        sources=(
            # T2M-GPT dataset/prepare/download_extractor.sh (t2m.zip, top folder t2m/)
            gdrive("1o7RTDQcToJjTm9_mNWTyzvZvjTWpZfug", "t2m.zip", "zip",
                   "T2M-GPT dataset/prepare/download_extractor.sh"),
            # MoMask prepare/download_evaluator.sh, current and earlier revision (unzipped inside checkpoints/t2m)
            gdrive("1oLhSH7zTlYkQdUWPv3-v4opigB7pXkFk", "humanml3d_evaluator.zip", "zip",
                   "MoMask prepare/download_evaluator.sh"),
            gdrive("19C_eiEr0kMGlYVJy_yFL6_Dhk3RvmwhM", "humanml3d_evaluator.zip", "zip",
                   "MoMask prepare/download_evaluator.sh (earlier revision)"),
            # MotionGPT prepare/download_t2m_evaluators.sh: one t2m.tar.gz holding t2m/ and kit/ (layout
            # not checked here; the expected files decide whether it is usable)
            gdrive("1AYsmEG8I3fAAoraT4vau0GnesWBWyeT8", "t2m.tar.gz", "tar",
                   "MotionGPT prepare/download_t2m_evaluators.sh"),
        )),
    "extractor-kit": Item(
        name="extractor-kit", dest="checkpoints/kit",
        description="T2M text/motion evaluator for KIT-ML, as repackaged by T2M-GPT",
        expected=_EVAL_FILES, recommended=_EVAL_META, filename="kit.zip", archive="zip",
        folder_hint="kit", dataset_name="kit",
        sources=(
            # T2M-GPT dataset/prepare/download_extractor.sh: current and earlier revision of kit.zip
            gdrive("1tX79xk0fflp07EZ660Xz1RAFE33iEyJR", "kit.zip", "zip",
                   "T2M-GPT dataset/prepare/download_extractor.sh"),
            gdrive("1KNU8CsMAnxFrwopKBBkC8jEULGLPBHQp", "kit.zip", "zip",
                   "T2M-GPT dataset/prepare/download_extractor.sh (earlier revision)"),
            # MoMask prepare/download_evaluator.sh, current and earlier revision
            gdrive("115n1ijntyKDDIZZEuA_aBgffyplNE5az", "kit_evaluator.zip", "zip",
                   "MoMask prepare/download_evaluator.sh"),
            gdrive("1TKIZ3TSSZawpilC-7Kw7Ws4sNNuzb49p", "kit_evaluator.zip", "zip",
                   "MoMask prepare/download_evaluator.sh (earlier revision)"),
            # MotionGPT prepare/download_t2m_evaluators.sh (the same t2m.tar.gz as above: one download per run)
            gdrive("1AYsmEG8I3fAAoraT4vau0GnesWBWyeT8", "t2m.tar.gz", "tar",
                   "MotionGPT prepare/download_t2m_evaluators.sh"),
        )),
    "glove": Item(
        name="glove", dest="glove",
        description="GloVe-300 vectors restricted to the HumanML3D/KIT vocabulary (4199 words), for the evaluator's "
                    "text encoder (utils/word_vectorizer.py)",
        expected=("our_vab_data.npy", "our_vab_words.pkl", "our_vab_idx.pkl"), filename="glove.zip", archive="zip",
        folder_hint="glove",
        sources=(
            # T2M-GPT dataset/prepare/download_glove.sh (glove.zip, top folder glove/)
            gdrive("1bCeS6Sh_mLVTebxIgiUHgdPrroW06mb6", "glove.zip", "zip",
                   "T2M-GPT dataset/prepare/download_glove.sh"),
            # MoMask prepare/download_glove.sh (also used by MotionCLR)
            gdrive("1cmXKUT31pqd7_XpJAiWEo1K81TMYHA5n", "glove.zip", "zip",
                   "MoMask prepare/download_glove.sh"),
        )),
    "ckpt": Item(
        name="ckpt", dest="ckpt",
        description="pretrained MotionLLM checkpoint of the original MoRL release (eval_mllm.py --eval-ckpt "
                    "ckpt/motionllm.pth)",
        expected=("motionllm.pth",), filename="motionllm.pth", archive="file",
        sources=(),
        note="No public download of the original MoRL release's pretrained checkpoints could be found (no "
             "download script or link for them was located). Set MORL_CKPT_URL to a copy you have access to (a "
             ".pth file, or a zip/tar.gz holding motionllm.pth), or train one with train_mllm.py."),
}
GROUPS = {"extractor": ("extractor-t2m", "extractor-kit")}
ASSET_NAMES = (*GROUPS, *MANIFEST)


def env_key(item_name: str) -> str:
    return "MORL_" + item_name.upper().replace("-", "_")


def main(argv=None) -> int:
    """``python prepare/assets_manifest.py``: print the manifest (the same as ``prepare/download.py --list``)."""
    import argparse
    import sys
    from pathlib import Path

    argparse.ArgumentParser(prog="prepare/assets_manifest.py",
                            description="Print the asset manifest: sources, destinations, expected files "
                                        "(the same as prepare/download.py --list).").parse_args(argv)
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from prepare.download import manifest_text

    print(manifest_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
