"""The quickstart's stage runner: dependencies respected, at most ``jobs`` stages at once, in priority order,
finished outputs are skipped, a failure stops what has not started."""
import json
import sys

import pytest

from utils.stage_runner import check_graph, run_stages


def _stage(tmp, name, after=(), sleep=0.3, rc=0):
    out = tmp / f"{name}.out"
    code = (f"import json,time,sys; t=time.time(); time.sleep({sleep}); "
            f"open({str(out)!r},'w').write(json.dumps([t,time.time()])); sys.exit({rc})")
    return {"name": name, "output": out, "after": list(after), "cmd": [sys.executable, "-c", code]}


def _span(tmp, name):
    return json.loads((tmp / f"{name}.out").read_text())


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_graph_errors_name_the_stage():
    with pytest.raises(ValueError, match="'b' depends on 'x'"):
        check_graph([{"name": "a"}, {"name": "b", "after": ["x"]}])
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        check_graph([{"name": "a", "after": ["b"]}, {"name": "b", "after": ["a"]}])


def test_parallel_where_allowed_in_priority_order(tmp_path):
    st = [_stage(tmp_path, "data"), _stage(tmp_path, "vq", ["data"], sleep=0.6), _stage(tmp_path, "x", ["data"]),
          _stage(tmp_path, "y", ["data"]), _stage(tmp_path, "z", ["vq", "x"])]
    rc, rep = run_stages(st, jobs=2, env=None, cwd=tmp_path, log_dir=tmp_path / "logs", say=lambda m: None,
                         poll_s=0.05)
    assert rc == 0 and [r["stage"] for r in rep] == ["data", "vq", "x", "y", "z"]
    s = {n: _span(tmp_path, n) for n in ("data", "vq", "x", "y", "z")}
    for n in ("vq", "x", "y"):
        assert s[n][0] >= s["data"][1]
    assert _overlap(s["vq"], s["x"]) and _overlap(s["vq"], s["y"])  # two at a time, the first ready ones first
    assert not _overlap(s["x"], s["y"])  # never three
    assert s["z"][0] >= max(s["vq"][1], s["x"][1])
    assert (tmp_path / "logs" / "vq.log").is_file()


def test_one_job_is_sequential_and_existing_outputs_are_skipped(tmp_path):
    st = [_stage(tmp_path, "a"), _stage(tmp_path, "b"), _stage(tmp_path, "c", ["a"])]
    (tmp_path / "a.out").write_text("[0, 0]")
    rc, rep = run_stages(st, jobs=1, env=None, cwd=tmp_path, log_dir=tmp_path / "logs", say=lambda m: None,
                         poll_s=0.05)
    assert rc == 0 and rep[0] == {"stage": "a", "seconds": 0.0, "skipped": True}
    assert not _overlap(_span(tmp_path, "b"), _span(tmp_path, "c"))
    assert not (tmp_path / "logs").exists()  # one job: output streams to the terminal


def test_failure_stops_stages_not_started(tmp_path):
    said = []
    st = [_stage(tmp_path, "a", rc=3), _stage(tmp_path, "b", sleep=0.6), _stage(tmp_path, "c", ["a"])]
    rc, rep = run_stages(st, jobs=2, env=None, cwd=tmp_path, log_dir=tmp_path / "logs", say=said.append,
                         poll_s=0.05)
    assert rc == 3
    assert (tmp_path / "b.out").is_file()  # already running: allowed to finish
    assert not (tmp_path / "c.out").exists() and [r["stage"] for r in rep] == ["a", "b"]
    assert any(m.startswith("[fail] a exited with 3") for m in said)
