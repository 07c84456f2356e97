"""prepare/download.py against a local HTTP server (127.0.0.1 only; nothing here reaches the internet).

The server serves archives with Range support and can: ignore Range, truncate the next response
(Content-Length larger than the body, then close), answer 404, and play Google Drive's
"can't scan for viruses" confirmation form (or its quota-exceeded page)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from prepare import download as D

ROOT = Path(__file__).resolve().parents[1]
GLOVE_FILES = ("our_vab_data.npy", "our_vab_words.pkl", "our_vab_idx.pkl")


# ----------------------------------------------------------------------------- archives
def _payload(seed: int, n: int) -> bytes:
    """Incompressible bytes, so that the archives are large enough to be cut in the middle."""
    out, h = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_gz(members: dict, links: dict = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


GLOVE = {f"glove/{n}": _payload(i, 120_000 if n.endswith(".npy") else 2_000) for i, n in enumerate(GLOVE_FILES)}


def _evaluator_tree(ds: str, prefix: str) -> dict:
    opt = (f"------------ Options -------------\ndataset_name: {ds}\ncheckpoints_dir: ./checkpoints\n"
           f"name: Comp_v6_KLD005\nunit_length: 4\n-------------- End ----------------\n").encode()
    return {f"{prefix}Comp_v6_KLD005/opt.txt": opt,
            f"{prefix}Comp_v6_KLD005/meta/mean.npy": _payload(10, 1000),
            f"{prefix}Comp_v6_KLD005/meta/std.npy": _payload(11, 1000),
            f"{prefix}text_mot_match/model/finest.tar": _payload(12 if ds == "t2m" else 13, 50_000)}


ARCHIVES = {
    "glove.zip": _zip(GLOVE),
    # MotionGPT-style: one tarball with t2m/t2m/ and t2m/kit/ (kit sorts first: the dataset must decide)
    "t2m.tar.gz": _tar_gz({**_evaluator_tree("kit", "t2m/kit/"), **_evaluator_tree("t2m", "t2m/t2m/")}),
    "flat.zip": _zip({n: b"v" for n in GLOVE_FILES}),  # files at the top, as MoMask's evaluator zips
    "empty.zip": _zip({"readme.txt": b"nothing useful"}),
    "evil.zip": _zip({**GLOVE, "../evil.txt": b"escaped"}),
    "motionllm.pth": _payload(20, 30_000),
    "model_final.pth": _payload(21, 30_000),  # a bare checkpoint under another name
    "evil.tar.gz": _tar_gz({f"glove/{n}": b"x" for n in GLOVE_FILES}, links={"glove/link": "/etc/passwd"}),
}


# ----------------------------------------------------------------------------- server
class _State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.requests, self.truncate_next, self.ignore_range = [], set(), set()
        self.uuid = "9f3c-test-uuid"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, body: bytes, ctype="text/html; charset=utf-8", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.server.state
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        st.requests.append((url.path, dict(q), self.headers.get("Range")))
        host = f"http://{self.headers['Host']}"
        if url.path == "/uc":  # Drive's first answer for a large file: a confirmation form
            if q.get("id", "").startswith("quota"):  # "quota": a 200 page (older Drive), "quota403": an error page
                return self._send(403 if q["id"] == "quota403" else 200,
                                  b"<html><head><title>Google Drive - Quota exceeded</title></head><body>"
                                  b"Too many users have viewed or downloaded this file recently.</body></html>")
            form = (f'<html><body><form id="download-form" action="{host}/download" method="get">'
                    f'<input type="hidden" name="id" value="{q.get("id", "")}">'
                    f'<input type="hidden" name="export" value="download">'
                    f'<input type="hidden" name="confirm" value="t">'
                    f'<input type="hidden" name="uuid" value="{st.uuid}">'
                    f'<input type="submit" value="Download anyway"></form></body></html>')
            return self._send(200, form.encode())
        if url.path == "/download":
            if q.get("uuid") != st.uuid or q.get("confirm") != "t":
                return self._send(403, b"<html>bad confirmation</html>")
            return self._serve(f"{q.get('id')}.zip")
        if url.path.startswith("/files/"):
            return self._serve(url.path[len("/files/"):])
        self._send(404, b"<html>not found</html>")

    def _serve(self, name):
        st = self.server.state
        data = ARCHIVES.get(name)
        if data is None:
            return self._send(404, b"<html>not found</html>")
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(m.group(1)) if m and name not in st.ignore_range else 0
        if start >= len(data) and start:
            return self._send(416, b"", headers=[("Content-Range", f"bytes */{len(data)}")])
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if name in st.truncate_next:  # promise everything, send half, hang up
            st.truncate_next.discard(name)
            body = body[:len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = _State()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def srv(server):
    server.state.reset()
    return server


def _get(srv, root, names=("glove",), **env):
    return D.download(list(names), root=root, progress=False, quiet=True, timeout=10, env=env)


def _leftovers(root: Path):
    return sorted(p.name for p in root.rglob(".*") if ".unpack-" in p.name or ".old-" in p.name)


# ----------------------------------------------------------------------------- tests
def test_glove_zip_installed_and_checksum_recorded(srv, tmp_path):
    res = _get(srv, tmp_path, MORL_GLOVE_URL=f"{srv.base}/files/glove.zip")
    assert res[0]["status"] == "installed"
    for n in GLOVE_FILES:
        assert (tmp_path / "glove" / n).read_bytes() == GLOVE[f"glove/{n}"]
    record = json.loads((tmp_path / "glove" / ".download.json").read_text())
    assert record["sha256"] == hashlib.sha256(ARCHIVES["glove.zip"]).hexdigest() == res[0]["sha256"]
    assert record["sha256_pinned"] is False and record["url"].endswith("/files/glove.zip")
    cache = tmp_path / "checkpoints" / ".download_cache"
    assert not [p for p in cache.iterdir()], "the archive is removed after a successful install"
    assert _leftovers(tmp_path) == []
    # a second run keeps the complete asset without a request
    n = len(srv.state.requests)
    assert _get(srv, tmp_path, MORL_GLOVE_URL=f"{srv.base}/files/glove.zip")[0]["status"] == "kept"
    assert len(srv.state.requests) == n


def test_extractor_layout_from_one_tarball(srv, tmp_path):
    url = f"{srv.base}/files/t2m.tar.gz"
    _get(srv, tmp_path, ["extractor"], MORL_EXTRACTOR_T2M_URL=url, MORL_EXTRACTOR_KIT_URL=url)
    assert [p for p, _, _ in srv.state.requests] == ["/files/t2m.tar.gz"], "one download serves both datasets"
    assert not list((tmp_path / "checkpoints" / ".download_cache").iterdir())
    from models.evaluator_wrapper import parse_opt_file, resolve_layout
    for ds in ("t2m", "kit"):
        opt = parse_opt_file(tmp_path / "checkpoints" / ds / "Comp_v6_KLD005" / "opt.txt")
        assert opt["dataset_name"] == ds, "each dataset's folder comes from its own subtree of the tarball"
        layout = resolve_layout(opt)
        assert layout["model"].read_bytes() == _evaluator_tree(ds, "")["text_mot_match/model/finest.tar"]
    assert _leftovers(tmp_path) == []


def test_resume_sends_range_and_result_is_identical(srv, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cut = 100_000
    (cache / "glove.zip.part").write_bytes(ARCHIVES["glove.zip"][:cut])
    D.download(["glove"], root=tmp_path, cache=cache, keep_archive=True, progress=False, quiet=True,
               env={"MORL_GLOVE_URL": f"{srv.base}/files/glove.zip"})
    ranges = [r for p, _, r in srv.state.requests if p == "/files/glove.zip"]
    assert ranges == [f"bytes={cut}-"]
    assert (cache / "glove.zip").read_bytes() == ARCHIVES["glove.zip"]
    assert not (cache / "glove.zip.part").exists()
    assert (tmp_path / "glove" / "our_vab_data.npy").read_bytes() == GLOVE["glove/our_vab_data.npy"]


def test_server_ignoring_range_restarts_from_zero(srv, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "glove.zip.part").write_bytes(b"garbage" * 100)
    srv.state.ignore_range.add("glove.zip")
    D.download(["glove"], root=tmp_path, cache=cache, keep_archive=True, progress=False, quiet=True,
               env={"MORL_GLOVE_URL": f"{srv.base}/files/glove.zip"})
    assert (cache / "glove.zip").read_bytes() == ARCHIVES["glove.zip"]


def _existing_glove(root: Path) -> dict:
    dest = root / "glove"
    dest.mkdir(parents=True)
    for n in GLOVE_FILES:
        (dest / n).write_bytes(b"old " + n.encode())
    (dest / "mine.txt").write_text("user file")
    return {p.name: p.read_bytes() for p in dest.iterdir()}


def test_wrong_sha256_fails_and_keeps_destination(srv, tmp_path):
    before = _existing_glove(tmp_path)
    wrong = "0" * 64
    with pytest.raises(D.AssetError) as err:
        D.download(["glove"], root=tmp_path, force=True, progress=False, quiet=True,
                   env={"MORL_GLOVE_URL": f"{srv.base}/files/glove.zip", "MORL_GLOVE_SHA256": wrong})
    msg = str(err.value)
    got = hashlib.sha256(ARCHIVES["glove.zip"]).hexdigest()
    assert "sha256 mismatch for glove.zip" in msg and wrong in msg and got in msg
    assert {p.name: p.read_bytes() for p in (tmp_path / "glove").iterdir()} == before
    cache = tmp_path / "checkpoints" / ".download_cache"
    assert not list(cache.glob("glove.zip*")), "a mismatching download is deleted"
    # the right checksum installs it
    D.download(["glove"], root=tmp_path, force=True, progress=False, quiet=True,
               env={"MORL_GLOVE_URL": f"{srv.base}/files/glove.zip", "MORL_GLOVE_SHA256": got.upper()})
    assert json.loads((tmp_path / "glove" / ".download.json").read_text())["sha256_pinned"] is True
    assert not (tmp_path / "glove" / "mine.txt").exists() and _leftovers(tmp_path) == []


def test_truncated_download_keeps_part_then_resumes(srv, tmp_path):
    srv.state.truncate_next.add("glove.zip")
    env = {"MORL_GLOVE_URL": f"{srv.base}/files/glove.zip"}
    part = tmp_path / "checkpoints" / ".download_cache" / "glove.zip.part"
    with pytest.raises(D.AssetError) as err:
        D.download(["glove"], root=tmp_path, progress=False, quiet=True, env=env)
    size = len(ARCHIVES["glove.zip"])
    assert part.is_file() and part.stat().st_size == size // 2
    assert f"stopped at {size // 2} of {size} bytes" in str(err.value) and str(part) in str(err.value)
    assert "rerun" in str(err.value) and not (tmp_path / "glove").exists()
    D.download(["glove"], root=tmp_path, progress=False, quiet=True, env=env)
    assert srv.state.requests[-1][2] == f"bytes={size // 2}-"
    assert (tmp_path / "glove" / "our_vab_data.npy").read_bytes() == GLOVE["glove/our_vab_data.npy"]
    assert json.loads((tmp_path / "glove" / ".download.json").read_text())["sha256"] == \
        hashlib.sha256(ARCHIVES["glove.zip"]).hexdigest()


def test_404_names_url_and_fix_exit_2(srv, tmp_path, monkeypatch, capsys):
    url = f"{srv.base}/files/missing.zip"
    monkeypatch.delenv("MORL_MIRROR", raising=False)
    monkeypatch.setenv("MORL_GLOVE_URL", url)
    assert D.main(["glove", "--root", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "asset glove" in err and url in err and "HTTP 404" in err
    assert "fix: set MORL_GLOVE_URL" in err and str(tmp_path / "checkpoints" / ".download_cache" / "missing.zip") in err
    assert "Traceback" not in err and not (tmp_path / "glove").exists()


def test_existing_folder_survives_failed_replacement(srv, tmp_path):
    before = _existing_glove(tmp_path)
    for url in (f"{srv.base}/files/missing.zip", f"{srv.base}/files/empty.zip"):
        with pytest.raises(D.AssetError) as err:
            D.download(["glove"], root=tmp_path, force=True, progress=False, quiet=True, env={"MORL_GLOVE_URL": url})
        assert "was not changed" in str(err.value)
        assert {p.name: p.read_bytes() for p in (tmp_path / "glove").iterdir()} == before
    assert "missing our_vab_data.npy" in str(err.value)
    # an incomplete folder that is not ours is refused without --force, before any request
    (tmp_path / "glove" / "our_vab_idx.pkl").unlink()
    n = len(srv.state.requests)
    with pytest.raises(D.AssetError, match="lacks our_vab_idx.pkl.*--force"):
        _get(srv, tmp_path, MORL_GLOVE_URL=f"{srv.base}/files/glove.zip")
    assert len(srv.state.requests) == n and (tmp_path / "glove" / "mine.txt").is_file()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name, what", [("evil.zip", "'../evil.txt'"), ("evil.tar.gz", "'glove/link'")])
def test_unsafe_archive_members_refused(srv, tmp_path, name, what):
    root = tmp_path / "root"
    with pytest.raises(D.AssetError) as err:
        _get(srv, root, MORL_GLOVE_URL=f"{srv.base}/files/{name}")
    assert f"unsafe archive {name}" in str(err.value) and what in str(err.value)
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert not (root / "glove").exists() and _leftovers(root) == []


def test_google_drive_confirmation_form(srv, tmp_path):
    url = f"{srv.base}/uc?export=download&id=glove"
    _get(srv, tmp_path, MORL_GLOVE_URL=url)
    paths = [(p, q) for p, q, _ in srv.state.requests]
    assert paths[0] == ("/uc", {"export": "download", "id": "glove"})
    assert paths[1] == ("/download", {"id": "glove", "export": "download", "confirm": "t", "uuid": srv.state.uuid})
    assert (tmp_path / "glove" / "our_vab_words.pkl").read_bytes() == GLOVE["glove/our_vab_words.pkl"]


@pytest.mark.parametrize("file_id", ["quota", "quota403"])
def test_google_drive_quota_page_is_a_clear_error(srv, tmp_path, file_id):
    url = f"{srv.base}/uc?export=download&id={file_id}"
    with pytest.raises(D.AssetError) as err:
        _get(srv, tmp_path, MORL_GLOVE_URL=url)
    msg = str(err.value)
    assert "asset glove" in msg and url in msg and "quota is exceeded" in msg
    assert "MORL_GLOVE_URL" in msg and str(tmp_path / "checkpoints" / ".download_cache" / "glove.zip") in msg
    assert not list((tmp_path / "checkpoints" / ".download_cache").iterdir())


def test_confirm_url_variants():
    base = "https://drive.google.com/uc?export=download&id=ABC"
    old = '<html><a id="uc-download-link" href="/uc?export=download&amp;confirm=Xy_1&amp;id=ABC">Download</a></html>'
    assert D.confirm_url(old, base) == "https://drive.google.com/uc?export=download&confirm=Xy_1&id=ABC"

    class _Cookie:
        name, value = "download_warning_123_ABC", "tok"
    assert D.confirm_url("<html>no form</html>", base, [_Cookie()]) == \
        "https://drive.google.com/uc?export=download&id=ABC&confirm=tok"
    assert D.confirm_url("<html><title>Sign in</title></html>", base) is None


def test_mirror_and_manual_file(srv, tmp_path):
    _get(srv, tmp_path / "a", MORL_MIRROR=f"{srv.base}/files/")
    assert [p for p, _, _ in srv.state.requests] == ["/files/glove.zip"]
    # a file saved by hand into the cache is used without any request, and kept
    cache = tmp_path / "b" / "checkpoints" / ".download_cache"
    cache.mkdir(parents=True)
    (cache / "glove.zip").write_bytes(ARCHIVES["glove.zip"])
    _get(srv, tmp_path / "b", MORL_MIRROR=f"{srv.base}/nothing-here")
    assert len(srv.state.requests) == 1 and (cache / "glove.zip").is_file()
    assert (tmp_path / "b" / "glove" / "our_vab_data.npy").is_file()


def test_ckpt_without_public_source_says_so_or_takes_a_url(srv, tmp_path):
    with pytest.raises(D.AssetError, match="No public download.*MORL_CKPT_URL"):
        D.download(["ckpt"], root=tmp_path, progress=False, quiet=True, env={})
    _get(srv, tmp_path, ["ckpt"], MORL_CKPT_URL=f"{srv.base}/files/motionllm.pth")  # a bare file: not unpacked
    assert (tmp_path / "ckpt" / "motionllm.pth").read_bytes() == ARCHIVES["motionllm.pth"]
    # a bare file named otherwise by its URL is installed under the name the code reads
    _get(srv, tmp_path / "b", ["ckpt"], MORL_CKPT_URL=f"{srv.base}/files/model_final.pth")
    assert (tmp_path / "b" / "ckpt" / "motionllm.pth").read_bytes() == ARCHIVES["model_final.pth"]
    with pytest.raises(D.AssetError, match="MORL_GLOVE_SHA256=.abc. is not a sha256"):
        D.download(["glove"], root=tmp_path, progress=False, quiet=True, env={"MORL_GLOVE_SHA256": "abc"})


def test_bash_wrapper_from_another_directory(srv, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "MORL_GLOVE_URL": f"{srv.base}/files/glove.zip"}
    env.pop("MORL_MIRROR", None)
    script = str(ROOT / "prepare" / "download_glove.sh")
    out = subprocess.run(["bash", script, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "MORL_MIRROR" in out.stdout
    out = subprocess.run(["bash", script, "--root", "dest", "--quiet"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "dest" / "glove" / "our_vab_data.npy").read_bytes() == GLOVE["glove/our_vab_data.npy"]
    env["MORL_GLOVE_URL"] = f"{srv.base}/files/missing.zip"
    out = subprocess.run(["bash", script, "--root", "dest2", "--quiet"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "HTTP 404" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "prepare.download", "--list"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "checkpoints/t2m" in out.stdout and "MORL_CKPT_URL" in out.stdout


def test_swap_failure_restores_the_old_folder(tmp_path, monkeypatch):
    dest, staged = tmp_path / "glove", tmp_path / ".glove.unpack-x"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    staged.mkdir()
    (staged / "new.txt").write_text("new")
    real_rename, calls = os.rename, []

    def flaky_rename(a, b):
        calls.append((Path(a).name, Path(b).name))
        if Path(a) == staged:
            raise OSError("simulated failure while moving the new folder in")
        return real_rename(a, b)
    monkeypatch.setattr(D.os, "rename", flaky_rename)
    with pytest.raises(OSError, match="simulated"):
        D._swap_in(staged, dest)
    assert (dest / "old.txt").read_text() == "old" and len(calls) == 3  # aside, (failed) in, back
    monkeypatch.setattr(D.os, "rename", real_rename)
    D._swap_in(staged, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glove"] and (dest / "new.txt").is_file()


def test_archive_without_top_folder(srv, tmp_path):
    _get(srv, tmp_path, MORL_GLOVE_URL=f"{srv.base}/files/flat.zip")
    dest = tmp_path / "glove"
    assert sorted(p.name for p in dest.iterdir()) == sorted([".download.json", *GLOVE_FILES])
    mask = os.umask(0)
    os.umask(mask)
    assert dest.stat().st_mode & 0o777 == 0o777 & ~mask and _leftovers(tmp_path) == []
