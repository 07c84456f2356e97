#!/usr/bin/env python
"""Download the evaluation assets: the T2M evaluators ("extractor"), the GloVe word vectors, checkpoints.

    python prepare/download.py extractor glove            # into the repo root
    python -m prepare.download glove --root /data/morl    # into another root
    bash prepare/download_extractor.sh                    # the same, under the original script names
    python prepare/download.py --list                     # the manifest: sources, destinations, files

Assets (destinations relative to --root, default the repository root):

    extractor-t2m   checkpoints/t2m/   T2M evaluator for HumanML3D: text_mot_match/model/finest.tar,
                                       Comp_v6_KLD005/opt.txt (+ meta/ where the archive has it)
    extractor-kit   checkpoints/kit/   the same for KIT-ML
    extractor       both of the above
    glove           glove/             our_vab_data.npy, our_vab_words.pkl, our_vab_idx.pkl
    ckpt            ckpt/              pretrained MoRL checkpoints (motionllm.pth): no public source is known,
                                       so this asset needs MORL_CKPT_URL

Environment:

    MORL_MIRROR=URL            fetch every archive from URL/<archive name> (t2m.zip, kit.zip, glove.zip, ...)
                               instead of the official sources (the official sources are then not tried)
    MORL_<ASSET>_URL=URL       exact URL of one asset's archive; ASSET upper-cased with '-' -> '_':
                               MORL_EXTRACTOR_T2M_URL, MORL_EXTRACTOR_KIT_URL, MORL_GLOVE_URL, MORL_CKPT_URL
    MORL_<ASSET>_SHA256=HEX    pin the archive's sha256 (MORL_GLOVE_SHA256=...): a mismatch deletes the
                               download and fails
    MORL_DOWNLOAD_CACHE=DIR    where archives are downloaded (default <root>/checkpoints/.download_cache)

How it works: an archive is downloaded to <cache>/<name>.part (a rerun resumes it with an HTTP Range
request), checked (sha256 when one is known; the sha256 of what arrived is always printed and written
to <dest>/.download.json so that it can be pinned), unpacked into a temporary folder beside the
destination, checked for the expected files, and only then swapped in: an existing destination is
renamed aside, the new one renamed in, and the old one removed last (restored on failure). An
existing complete asset is kept unless --force. Google Drive's "can't scan for viruses" confirmation
page is answered here (no gdown); when Drive answers with any other page (quota exceeded, file removed,
no access) the error names the asset, the URL and the fix. A file downloaded by hand can be put at
<cache>/<archive name>: the next run uses it. Exit status 2 for every user-facing error.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import http.cookiejar
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXIT_USER_ERROR = 2
USER_AGENT = "morl-download/1.0 (python urllib)"
CHUNK = 1 << 20


# ----------------------------------------------------------------------------- manifest
# (in prepare/assets_manifest.py; re-exported here)
from prepare.assets_manifest import (ASSET_NAMES, GROUPS, MANIFEST, Item, Source, env_key,  # noqa: E402,F401
                                     gdrive)


# ----------------------------------------------------------------------------- errors
class AssetError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""


class SourceFailed(Exception):
    """One source did not give a usable archive; the next source is tried."""


class _Restart(Exception):
    """The partial file cannot be resumed: start again from byte 0."""


# ----------------------------------------------------------------------------- helpers
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _valid_sha(value: str, what: str) -> str:
    v = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", v):
        raise AssetError(f"{what}={value!r} is not a sha256 (64 hexadecimal characters)")
    return v


def _archive_kind(name: str, default: str) -> str:
    n = name.lower()
    if n.endswith(".zip"):
        return "zip"
    if n.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if n.endswith(".tar"):  # a tar archive, or torch's checkpoint suffix in this field (finest.tar)
        return "file" if default == "file" else "tar"
    if n.endswith((".pth", ".pt", ".ckpt", ".bin", ".safetensors", ".npy", ".pkl")):
        return "file"
    return default


def _filename_from_url(url: str, default: str) -> str:
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name or name in (".", "..") or "." not in name:
        return default
    return name


def _sniff(path: Path) -> str:
    """What a downloaded file looks like: zip, gzip, bzip2, xz, tar, html or data."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ"):
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    low = head.lstrip().lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in low[:200]:
        return "html"
    return "data"


# ----------------------------------------------------------------------------- Google Drive pages
class _PageParser(HTMLParser):
    """Forms (action + input fields) and confirm links of an HTML page."""

    def __init__(self):
        super().__init__()
        self.forms, self.links, self._form, self.title = [], [], None, ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").lower(), "fields": {}}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "a" and "confirm=" in a.get("href", ""):
            self.links.append(a["href"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def confirm_url(page: str, base_url: str, cookies: Sequence = ()) -> Optional[str]:
    """The URL that Drive's "can't scan this file for viruses" page downloads from, or None when the page
    is something else. Newer Drive: a GET form (hidden id/export/confirm/uuid fields) posting to
    drive.usercontent.google.com/download; older Drive: a link with confirm=<token>, or a
    download_warning cookie whose value is the token."""
    parser = _PageParser()
    parser.feed(page)
    for form in parser.forms:
        fields = form["fields"]
        if form["method"] == "get" and ("confirm" in fields or "uuid" in fields) and "id" in fields:
            action = urllib.parse.urljoin(base_url, form["action"] or base_url)
            return action.split("?", 1)[0] + "?" + urllib.parse.urlencode(fields)
    for href in parser.links:
        return urllib.parse.urljoin(base_url, href)
    for c in cookies:
        if c.name.startswith("download_warning") and c.value:
            parts = urllib.parse.urlsplit(base_url)
            query = dict(urllib.parse.parse_qsl(parts.query))
            query["confirm"] = c.value
            return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return None


def describe_page(page: str) -> str:
    """Why a host answered with an HTML page instead of the file."""
    low = page.lower()
    if "quota" in low or "too many users" in low:
        return ("Google Drive refuses the download: the file's download quota is exceeded (too many downloads "
                "in the last 24 hours; retry tomorrow or use another copy)")
    if "does not exist" in low or "not found" in low or "file is in owner's trash" in low:
        return "the file no longer exists at this URL (removed by its owner)"
    if "servicelogin" in low or "accounts.google.com" in low or "need access" in low or "request access" in low:
        return "the file is not public (the host answered with a sign-in / request-access page)"
    parser = _PageParser()
    parser.feed(page)
    title = " ".join(parser.title.split())
    return "the host answered with an HTML page instead of the file" + (f" (title: {title!r})" if title else "")


# ----------------------------------------------------------------------------- download
class Downloader:
    """HTTP(S) fetching with resume, Drive confirmation pages and progress."""

    def __init__(self, timeout: float = 60.0, progress: bool = True, log: Callable = print):
        self.timeout, self.progress, self.log = timeout, progress, log
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def _open(self, url: str, offset: int):
        """The response for the file's bytes from ``offset`` on, after answering confirmation pages."""
        for _ in range(4):
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            if offset:
                req.add_header("Range", f"bytes={offset}-")
            try:
                resp = self.opener.open(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                if e.code == 416 and offset:
                    e.close()
                    raise _Restart(f"the server refused to resume at byte {offset} (HTTP 416)")
                reason = {404: "not found: the file was removed or the URL is wrong", 410: "gone: the file was removed",
                          401: "authentication required", 403: "access denied (private file, or quota exceeded)",
                          429: "rate-limited: too many requests, retry later"}.get(
                    e.code, "server error, retry later" if e.code >= 500 else "request refused")
                try:  # Drive explains a refusal (quota, removed file) in an HTML body
                    body = e.read(200_000).decode("utf-8", "replace") if e.headers.get_content_type() == \
                        "text/html" else ""
                except (OSError, http.client.HTTPException):
                    body = ""
                finally:
                    e.close()
                why = describe_page(body) if body else ""
                if why and not why.startswith("the host answered"):
                    reason = why
                raise SourceFailed(f"HTTP {e.code} {reason}")
            except (urllib.error.URLError, OSError) as e:
                raise SourceFailed(f"could not connect ({getattr(e, 'reason', e)})")
            if resp.headers.get_content_type() == "text/html":
                try:
                    page = resp.read(2_000_000).decode("utf-8", "replace")
                finally:
                    resp.close()
                nxt = confirm_url(page, resp.geturl(), list(self.cookies))
                if nxt is None or nxt == url:
                    raise SourceFailed(describe_page(page))
                url = nxt
                continue
            return resp
        raise SourceFailed("too many confirmation pages in a row")

    def fetch(self, src: Source, part: Path) -> int:
        """Download ``src`` into ``part``, resuming what is already there; returns the final size.
        Raises SourceFailed (dead source; the partial file is removed when it holds nothing useful) or
        AssetError-worthy _Truncated (the partial file is kept)."""
        offset = part.stat().st_size if part.is_file() else 0
        try:
            resp = self._open(src.url, offset)
        except _Restart as why:
            self.log(f"  {why}; starting {src.filename} again from the beginning")
            part.unlink(missing_ok=True)
            offset = 0
            resp = self._open(src.url, 0)
        with resp:
            total = None
            if offset and resp.status == 206:
                m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:
                    raise SourceFailed(f"the server resumed at the wrong place (Content-Range "
                                       f"{resp.headers.get('Content-Range')!r}, wanted byte {offset}); delete {part} "
                                       f"and rerun")
                total = int(m.group(3)) if m.group(3) != "*" else None
                mode = "ab"
                self.log(f"  resuming {src.filename} at {offset} bytes")
            else:
                if offset:
                    self.log(f"  the server ignored the Range request (HTTP {resp.status}); restarting {src.filename}")
                offset, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            got, broken = offset, False
            bar = _progress_bar(total, offset, src.filename, self.progress)
            try:
                with open(part, mode) as f:
                    while True:
                        try:
                            block = resp.read(CHUNK)
                        except http.client.IncompleteRead as e:
                            f.write(e.partial)
                            got += len(e.partial)
                            broken = True
                            break
                        except (OSError, http.client.HTTPException) as e:
                            self.log(f"  connection lost: {e}")
                            broken = True
                            break
                        if not block:
                            break
                        f.write(block)
                        got += len(block)
                        bar.update(len(block))
            finally:
                bar.close()
        if (total is not None and got != total) or broken:
            raise _Truncated(got, total)
        if total is None and got == offset and offset == 0:
            raise SourceFailed("the server sent an empty file")
        return got


class _Truncated(Exception):
    def __init__(self, got, total):
        super().__init__(f"{got} of {total} bytes")
        self.got, self.total = got, total


def _progress_bar(total, initial, desc, enabled):
    if enabled:
        try:
            from tqdm import tqdm
            return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                        file=sys.stderr)
        except ImportError:
            pass

    class _Null:
        def update(self, n):
            pass

        def close(self):
            pass
    return _Null()


# ----------------------------------------------------------------------------- unpack
def _check_member(name: str, archive: Path):
    n = name.replace("\\", "/")
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n) or ".." in parts:
        raise SourceFailed(f"unsafe archive {archive.name}: member {name!r} points outside the destination "
                           f"(absolute path or '..'); refused, nothing was unpacked")


def unpack(archive: Path, kind: str, into: Path, filename: str):
    """Unpack ``archive`` into the (empty) folder ``into``; members that would land outside it, links
    and device files are refused before anything is written."""
    if kind == "file":
        shutil.copyfile(archive, into / filename)
        return
    if kind == "zip":
        try:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(info.filename, archive)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise SourceFailed(f"unsafe archive {archive.name}: member {info.filename!r} is a symbolic "
                                           f"link; refused, nothing was unpacked")
                zf.extractall(into)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as e:
            raise SourceFailed(f"{archive.name} is not a readable zip archive ({e})")
        return
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                _check_member(m.name, archive)
                if not (m.isfile() or m.isdir()):
                    raise SourceFailed(f"unsafe archive {archive.name}: member {m.name!r} is a link or special "
                                       f"file; refused, nothing was unpacked")
            if hasattr(tarfile, "data_filter"):
                tf.extractall(into, members=members, filter="data")
            else:  # pragma: no cover (Python < 3.11.4); the checks above already refuse what the filter would
                tf.extractall(into, members=members)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise SourceFailed(f"{archive.name} is not a readable tar archive ({e})")


def _opt_dataset(opt_path: Path) -> Optional[str]:
    try:
        for line in opt_path.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "dataset_name":
                return value.strip()
    except OSError:
        return None
    return None


def find_content_root(top: Path, item: Item, max_depth: int = 4):
    """The folder under ``top`` holding every expected file of ``item`` (the one named like
    item.folder_hint first, then the shallowest); (None, best partial match, its missing files) if none."""
    complete, best = [], (-1, top, list(item.expected))
    for dirpath, dirnames, _ in os.walk(top):
        d = Path(dirpath)
        depth = len(d.relative_to(top).parts)
        dirnames[:] = sorted(n for n in dirnames if n != "__MACOSX" and depth < max_depth)
        missing = [e for e in item.expected if not (d / e).is_file()]
        if missing:
            found = len(item.expected) - len(missing)
            if found > best[0]:
                best = (found, d, missing)
            continue
        if item.dataset_name:
            ds = _opt_dataset(d / "Comp_v6_KLD005" / "opt.txt")
            if ds is not None and ds != item.dataset_name:
                continue
        complete.append((d.name != item.folder_hint, depth, str(d), d))
    if complete:
        return min(complete)[3], None, []
    return None, best[1], best[2]


# ----------------------------------------------------------------------------- install
def is_complete(dest: Path, item: Item) -> bool:
    return dest.is_dir() and all((dest / e).is_file() for e in item.expected)


def resolve_sources(item: Item, env: Mapping[str, str]) -> list:
    key = env_key(item.name)
    sha_env = env.get(f"{key}_SHA256", "").strip()
    sha = _valid_sha(sha_env, f"{key}_SHA256") if sha_env else None
    url = env.get(f"{key}_URL", "").strip()
    if url:
        name = _filename_from_url(url, item.filename)
        return [Source(f"${key}_URL", url, name, _archive_kind(name, item.archive), sha)]
    mirror = env.get("MORL_MIRROR", "").strip()
    if mirror:
        out, seen = [], set()
        for s in item.sources or (Source("", "", item.filename, item.archive),):
            if s.filename not in seen:
                seen.add(s.filename)
                out.append(Source("$MORL_MIRROR", mirror.rstrip("/") + "/" + urllib.parse.quote(s.filename),
                                  s.filename, s.archive, sha or s.sha256))
        return out
    return [replace(s, sha256=sha or s.sha256) for s in item.sources]


def _fix_text(item: Item, cache: Path, dest: Path, src: Optional[Source] = None) -> str:
    key = env_key(item.name)
    name = src.filename if src else item.filename
    where = f" (e.g. from {src.page or src.url})" if src else ""
    return (f"fix: set {key}_URL to a working copy of {name} (or MORL_MIRROR to a base URL holding it), or download "
            f"{name} by hand{where} and save it as {cache / name}, then rerun this command; or unpack it yourself so "
            f"that {', '.join(str(dest / e) for e in item.expected)} exist")


def _obtain(item: Item, src: Source, cache: Path, dl: Downloader) -> tuple:
    """The complete archive of ``src`` in the cache (downloaded, resumed, or put there by hand) and its sha256."""
    final = cache / src.filename
    part, origin_file = final.with_name(final.name + ".part"), final.with_name(final.name + ".src")
    if final.is_file():
        dl.log(f"  using {final} (already downloaded)")
        by_hand = not origin_file.is_file()
    else:
        by_hand = False
        if part.is_file() and origin_file.is_file() and origin_file.read_text().strip() != src.url:
            dl.log(f"  {part} came from another URL; starting again")
            part.unlink()
        if not part.is_file():
            origin_file.write_text(src.url + "\n")
        dl.log(f"  downloading {src.filename} from {src.url}")
        try:
            dl.fetch(src, part)
        except _Truncated as t:
            raise AssetError(
                f"asset {item.name}: the download of {src.filename} from {src.url} stopped at {t.got} of "
                f"{t.total if t.total is not None else 'an unknown number of'} bytes (the connection closed early). "
                f"The partial file is kept at {part}: rerun the same command to resume from there.")
        except SourceFailed:
            if part.is_file() and part.stat().st_size == 0:
                part.unlink()
            if not part.is_file():
                origin_file.unlink(missing_ok=True)
            raise
        if _sniff(part) == "html":
            page = part.read_text(errors="replace")
            part.unlink()
            origin_file.unlink(missing_ok=True)
            raise SourceFailed(describe_page(page))
        os.replace(part, final)
    digest = sha256_file(final)
    if src.sha256 and digest != src.sha256:
        if by_hand:
            raise SourceFailed(f"sha256 mismatch for {final}: expected {src.sha256}, got {digest} (a file you put "
                               f"there: check or delete it)")
        final.unlink()
        origin_file.unlink(missing_ok=True)
        raise SourceFailed(f"sha256 mismatch for {src.filename}: expected {src.sha256}, got {digest}; the download "
                           f"was deleted")
    kind = _sniff(final)
    if src.archive == "zip" and kind != "zip" or src.archive == "tar" and kind not in ("gzip", "bzip2", "xz", "tar"):
        what = "an HTML page" if kind == "html" else f"a {kind} file"
        if not by_hand:
            final.unlink()
            origin_file.unlink(missing_ok=True)
        raise SourceFailed(f"{src.filename} should be a {src.archive} archive but is {what}")
    return final, digest, by_hand


def _drop(archive: Path):
    archive.unlink(missing_ok=True)
    archive.with_name(archive.name + ".src").unlink(missing_ok=True)


def _swap_in(staged: Path, dest: Path):
    """Put the complete, verified folder ``staged`` at ``dest``. An existing ``dest`` is renamed aside
    first and removed only once the new folder is in place (renamed back on failure)."""
    backup = None
    if dest.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        backup.rmdir()
        os.rename(dest, backup)
    try:
        os.rename(staged, dest)
    except BaseException:
        if backup is not None:
            os.rename(backup, dest)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def install(item: Item, root: Path, cache: Path, dl: Downloader, env: Mapping[str, str], force: bool = False,
            keep_archive: bool = False, cleanup: Optional[list] = None) -> dict:
    """Install one item under ``root``. The downloaded archive is deleted afterwards unless ``keep_archive``;
    with a ``cleanup`` list it is appended there instead (so that several items can share one archive)."""
    dest = root / item.dest
    if dest.is_symlink():
        dest = dest.resolve()
    if is_complete(dest, item) and not force:
        dl.log(f"{item.name}: {dest} is already complete; kept it (--force downloads it again)")
        return {"asset": item.name, "status": "kept", "dest": str(dest)}
    if dest.exists() and not dest.is_dir():
        raise AssetError(f"asset {item.name}: {dest} exists and is not a folder; move it away and rerun")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        missing = [e for e in item.expected if not (dest / e).is_file()]
        why = " (train_evaluator.py writes into checkpoints/<dataset>/)" if item.dataset_name else ""
        raise AssetError(f"asset {item.name}: {dest} exists but lacks {', '.join(missing)}; it may hold your own "
                         f"files{why}, so it was left alone. Move it away, or rerun with --force to replace it (the "
                         f"old folder is removed only after the new one is complete)")
    sources = resolve_sources(item, env)
    if not sources:
        raise AssetError(f"asset {item.name}: {item.note} Expected afterwards: {dest / item.expected[0]}")
    cache.mkdir(parents=True, exist_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dl.log(f"{item.name}: {item.description} -> {dest}")
    failures = []
    for src in sources:
        try:
            archive, digest, by_hand = _obtain(item, src, cache, dl)
        except SourceFailed as e:
            failures.append((src, str(e)))
            dl.log(f"  failed: {e}")
            continue
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=dest.parent))
        try:
            # a bare file (no archive) is saved under the name the code reads, whatever the URL called it
            bare_name = item.expected[0] if src.archive == "file" and len(item.expected) == 1 else src.filename
            unpack(archive, src.archive, staging, bare_name)
            content, near, missing = find_content_root(staging, item)
            if content is None:
                rel = near.relative_to(staging)
                raise SourceFailed(f"{src.filename} does not hold the expected files: missing "
                                   f"{', '.join(missing)} (closest folder in the archive: {rel.as_posix() or '.'}/)")
            record = {"asset": item.name, "source": src.origin, "url": src.url, "archive": src.filename,
                      "sha256": digest, "sha256_pinned": bool(src.sha256), "bytes": archive.stat().st_size,
                      "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "expected_files": list(item.expected)}
            if content == staging:  # mkdtemp made it 0700: give it the permissions of a plain mkdir
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(content, 0o777 & ~mask)
            # written inside the staging folder, which becomes visible only by the rename below: no temp file needed
            (content / ".download.json").write_text(json.dumps(record, indent=1) + "\n")
            _swap_in(content, dest)
        except SourceFailed as e:
            failures.append((src, str(e)))
            dl.log(f"  failed: {e}")
            if not by_hand:  # a download that cannot be installed would be reused by the next run: drop it
                _drop(archive)
            continue
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not keep_archive and not by_hand:
            if cleanup is not None:
                cleanup.append(archive)
            else:
                _drop(archive)
        dl.log(f"{item.name}: installed {dest} from {src.origin}")
        dl.log(f"  sha256 of {src.filename}: {digest}" + ("" if src.sha256 else
               f" (pin it: {env_key(item.name)}_SHA256={digest})"))
        lacking = [r for r in item.recommended if not (dest / r).is_file()]
        if lacking:
            dl.log(f"  warning: this archive has no {', '.join(lacking)}; models/evaluator_wrapper.py reads the "
                   f"evaluator's normalisation from there (T2M-GPT keeps it in VQVAEV3_CB1024_CMT_H1024_NRES3/meta/; "
                   f"see docs/data-format.md §7.3)")
        return {"asset": item.name, "status": "installed", "dest": str(dest), "sha256": digest,
                "source": src.origin, "url": src.url}
    lines = "\n".join(f"  - {s.origin}: {s.url}: {why}" for s, why in failures)
    raise AssetError(f"asset {item.name}: could not install {dest} from any source ({len(failures)} tried); "
                     f"{dest} was not changed:\n{lines}\n{_fix_text(item, cache, dest, sources[0])}")


def expand(names: Sequence[str]) -> list:
    out = []
    for n in names:
        for m in GROUPS.get(n, (n,)):
            if m not in MANIFEST:
                raise AssetError(f"unknown asset {n!r}; choose from {', '.join(ASSET_NAMES)}")
            if m not in out:
                out.append(m)
    return out


def download(names: Sequence[str], root=ROOT, cache=None, force: bool = False, keep_archive: bool = False,
             progress: bool = True, quiet: bool = False, timeout: float = 60.0,
             env: Optional[Mapping[str, str]] = None) -> list:
    """Install the named assets under ``root``; returns one result dict per asset. Raises AssetError after
    trying every asset when any of them failed (the message holds every failure)."""
    env = os.environ if env is None else env
    root = Path(root).resolve()
    cache = Path(cache or env.get("MORL_DOWNLOAD_CACHE") or root / "checkpoints" / ".download_cache")
    log = (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, flush=True))
    dl = Downloader(timeout=timeout, progress=progress and not quiet, log=log)
    results, errors, cleanup = [], [], []
    try:
        for name in expand(names):
            try:
                results.append(install(MANIFEST[name], root, cache, dl, env, force=force, keep_archive=keep_archive,
                                       cleanup=cleanup))
            except AssetError as e:
                errors.append(str(e))
    finally:  # archives are removed at the end: one archive can serve several items (MotionGPT's t2m.tar.gz)
        for archive in dict.fromkeys(cleanup):
            _drop(archive)
    if errors:
        raise AssetError("\n".join(errors))
    return results


def manifest_text() -> str:
    lines = []
    for name, item in MANIFEST.items():
        lines.append(f"{name} -> {item.dest}/   {item.description}")
        lines.append(f"  files: {', '.join(item.expected)}" + (f" (+ {', '.join(item.recommended)} when shipped)"
                                                                if item.recommended else ""))
        for s in item.sources:
            lines.append(f"  source: {s.filename} ({s.archive}) {s.url}   [{s.origin}; sha256 "
                         f"{s.sha256 or 'not published'}]")
        if not item.sources:
            lines.append(f"  source: none. {item.note}")
        lines.append(f"  override: {env_key(name)}_URL, {env_key(name)}_SHA256")
    return "\n".join(lines)


def main(argv=None) -> int:
    doc = __doc__.split("\n\n", 1)[1]
    ap = argparse.ArgumentParser(prog="prepare/download.py", description=doc.split("How it works")[0],
                                 epilog="How it works" + doc.split("How it works", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("assets", nargs="*", metavar="ASSET", help=f"one or more of {', '.join(ASSET_NAMES)}")
    ap.add_argument("--root", default=str(ROOT), help="destination root (default: the repository root)")
    ap.add_argument("--cache", default=None, help="download folder (default $MORL_DOWNLOAD_CACHE or "
                                                  "<root>/checkpoints/.download_cache)")
    ap.add_argument("--force", action="store_true", help="replace an existing asset (the old one is removed only "
                                                         "after the new one is complete)")
    ap.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive in the cache")
    ap.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    ap.add_argument("--quiet", action="store_true", help="errors only, no progress bar")
    ap.add_argument("--list", action="store_true", help="print the manifest and exit")
    args = ap.parse_args(argv)
    if args.list:
        print(manifest_text())
        return 0
    if not args.assets:
        ap.error(f"name at least one asset: {', '.join(ASSET_NAMES)}")
    unknown = [a for a in args.assets if a not in ASSET_NAMES]
    if unknown:
        ap.error(f"unknown asset(s) {', '.join(unknown)}; choose from {', '.join(ASSET_NAMES)}")
    try:
        download(args.assets, root=args.root, cache=args.cache, force=args.force, keep_archive=args.keep_archive,
                 quiet=args.quiet, timeout=args.timeout)
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: a partial download stays in the cache as <name>.part; rerun to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
