"""Watching and exploring a run (issue #20): live metrics, TensorBoard events, and report.html in a browser."""

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _cli_args import TASK  # tests/_cli_args.py

from ctrnn_jax._cli import main

ROOT = Path(__file__).resolve().parents[1]
RUN = ["--members", "2", "--units", "5", "--steps-per-call", "5", "--batch", "4", "--progress", "none", *TASK]
FAST_FP = ["--n-candidates", "32", "--n-trials", "2", "--adam-steps", "50", "--completion-rounds", "1"]


def cli(argv) -> int:
    return main([str(a) for a in argv])


# ---------------------------------------------------------------------------------------------------
# Live metrics
# ---------------------------------------------------------------------------------------------------


def _rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path) as f:  # closed at once (an open file left to the garbage collector is a ResourceWarning)
        return sum(1 for _ in f)


def test_metrics_grow_every_chunk_and_a_killed_run_resumes_to_the_same_files(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli(["train", *RUN, "--steps", "60", "--checkpoint-every", "20", "--out", whole]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from ctrnn_jax._cli import main; sys.exit(main())",
            "train",
            *RUN,
            "--steps",
            "60",
            "--checkpoint-every",
            "20",
            "--out",
            str(killed),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    seen, t0 = [], time.time()
    try:  # every chunk (5 steps x 2 members) adds 10 rows; kill -9 between checkpoints, after step 35
        while time.time() - t0 < 120 and proc.poll() is None:
            n = _rows(killed / "metrics.csv")
            if n and (not seen or n != seen[-1]):
                seen.append(n)
            if n >= 1 + 2 * 35:
                break
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # waits, and closes its stderr pipe
    growth = np.diff(seen)
    assert len(seen) >= 4 and np.all(growth % 10 == 0) and np.all(growth > 0), seen  # grew chunk by chunk
    assert cli(["train", "--resume", killed]) == 0
    assert (killed / "metrics.csv").read_text() == (whole / "metrics.csv").read_text()
    strip = lambda path: [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]  # noqa: E731 (no steps/s)
    assert strip(killed / "summary.csv") == strip(whole / "summary.csv")
    summary = (whole / "summary.csv").read_text().splitlines()
    assert summary[0] == "step,median_loss,min_loss,max_loss,frozen,held,steps_per_s" and len(summary) == 1 + 60 // 5
    losses = np.loadtxt(whole / "metrics.csv", delimiter=",", skiprows=1)
    last = losses[losses[:, 0] == 60, 2]
    median, low, high = (float(v) for v in summary[-1].split(",")[1:4])
    assert median == pytest.approx(np.median(last), rel=1e-5) and low == pytest.approx(last.min(), rel=1e-5)
    assert high == pytest.approx(last.max(), rel=1e-5)


# ---------------------------------------------------------------------------------------------------
# TensorBoard
# ---------------------------------------------------------------------------------------------------


def read_events(folder: Path) -> list:
    """Every `Event` of the TFRecord event files in `folder` (length, crc, data, crc per record)."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i : i + 8])
            events.append(event_pb2.Event.FromString(data[i + 12 : i + 12 + length]))
            i += 12 + length + 4
    return events


def test_tensorboard_progress_writes_events_a_reader_gets_back(tmp_path):
    pytest.importorskip("tensorboardX")
    out = tmp_path / "run"
    assert (
        cli(
            [
                "train",
                *[a for a in RUN if a not in ("--progress", "none")],
                "--steps",
                "20",
                "--progress",
                "tensorboard",
                "--out",
                out,
            ]
        )
        == 0
    )
    scalars, histograms = {}, {}
    for event in read_events(out / "tensorboard"):
        for value in event.summary.value:
            if value.HasField("histo"):
                histograms.setdefault(value.tag, {})[event.step] = value.histo
            else:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    assert sorted(scalars["loss/median"]) == [5, 10, 15, 20]
    losses = np.loadtxt(out / "metrics.csv", delimiter=",", skiprows=1)
    for step in (5, 10, 15, 20):
        at = losses[losses[:, 0] == step, 2]
        assert scalars["loss/median"][step] == pytest.approx(np.median(at), rel=1e-4)
        assert scalars["loss/min"][step] == pytest.approx(at.min(), rel=1e-4)
        assert scalars["loss/member_1"][step] == pytest.approx(at[1], rel=1e-4)
        assert histograms["loss/members"][step].num == 2
    assert set(scalars["members/frozen"].values()) == {0.0}


def test_tensorboard_without_the_extra_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    with pytest.raises(SystemExit) as e:
        cli(["train", *RUN, "--steps", "5", "--progress", "tensorboard", "--out", tmp_path / "r"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'ctrnn-ensembles[tensorboard]'" in err[0]
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------------
# report.html
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """The analysis of two trained members of the main job's network and task (3-bit flip-flop, N = 64)."""
    pytest.importorskip("plotly")
    out = tmp_path_factory.mktemp("explorer") / "run"
    out.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "flipflop_n64_k2.npz", out / "ensemble.npz")
    argv = ["analyze", out / "ensemble.npz", "--out", out, "--n-candidates", "256", "--completion-rounds", "2"]
    assert cli(argv) == 0
    return out


def test_report_html_is_self_contained_and_listed(analysed):
    text = (analysed / "report.html").read_text()
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", text)  # the page's own tags (plotly.js is inline)
    assert tags and not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t)], tags
    assert "report.html" in json.loads((analysed / "analysis.json").read_text())["files"]


def test_explorer_traces_follow_the_fixed_points(analysed):
    from ctrnn_jax import FixedPoints
    from ctrnn_jax.analysis._analyze import analyze
    from ctrnn_jax.analysis._explorer import explorer_figures
    from ctrnn_jax.analysis._report import load_analysis_inputs

    ensemble, task, _ = load_analysis_inputs(analysed / "ensemble.npz")
    fp = FixedPoints.from_npz(analysed / "fixed_points.npz")
    result = analyze(ensemble, task, fixed_points=fp, robustness=False)
    space, graph, owners, owners_graph, members = explorer_figures(result)
    assert sorted(members) == [0, 1] and len(owners) == len(space.data)
    for m in members:  # the fixed-point markers of each member: all of its points, once
        markers = [t for t, o in zip(space.data, owners) if o == m and t.mode == "markers"]
        assert sum(len(t.x) for t in markers) == int(np.sum(fp.member == m))
        stable = [t for t in markers if t.name == "stable points"]
        assert (len(stable[0].x) if stable else 0) == int(np.sum(fp.is_stable[fp.member == m]))


def test_analyze_without_plotly_writes_the_rest_and_says_how(analysed, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    shutil.copytree(analysed, run)
    (run / "report.html").unlink()
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    assert cli(["analyze", run / "ensemble.npz", "--out", run, *FAST_FP]) == 0
    err = capsys.readouterr().err
    assert "report.html skipped" in err and "pip install 'ctrnn-ensembles[explorer]'" in err
    assert (run / "report.md").is_file() and not (run / "report.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
_CATCH = (
    "<script>window.__errors=[];window.addEventListener('error',function(e){__errors.push(String(e.message))});"
    "(function(){var c=console.error;console.error=function(){__errors.push(Array.prototype.join.call("
    "arguments,' '));c.apply(console,arguments)};})();</script>"
)
_PROBE = """<script>
window.addEventListener('load', function () { setTimeout(function () {
  function vis(d) { return d.data.map(function (t) { return t.visible !== false && t.visible !== 'legendonly'; }); }
  var ss = document.getElementById('state-space'), tg = document.getElementById('topology-graph');
  var r = {errors: window.__errors, traces: ss.data.length, before: vis(ss),
           canvases: ss.querySelectorAll('canvas').length, graph: tg ? tg.data.length : 0,
           graph_before: tg ? vis(tg) : [], svg: document.querySelectorAll('svg.main-svg').length};
  var sel = document.getElementById('member');
  r.options = Array.prototype.map.call(sel.options, function (o) { return Number(o.value); });
  sel.value = sel.options[1].value; sel.dispatchEvent(new Event('change'));
  r.after = vis(ss); r.graph_after = tg ? vis(tg) : [];
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
}, 2000); });
</script>"""


def _chromium(args, tmp_path):
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian's chromium) is not installed")
def test_report_html_renders_in_headless_chromium_and_toggles_members(analysed, tmp_path):
    page = tmp_path / "probe.html"
    text = (analysed / "report.html").read_text()
    page.write_text(text.replace("<head>", "<head>" + _CATCH, 1).replace("</body>", _PROBE + "</body>"))
    dom = _chromium(["--virtual-time-budget=30000", "--dump-dom", page.as_uri()], tmp_path).stdout
    start = dom.find('<pre id="probe">')
    assert start >= 0, dom[-2000:]
    r = json.loads(
        dom[start + len('<pre id="probe">') : dom.find("</pre>", start)]
        .replace("&quot;", '"')
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
    )
    assert r["errors"] == []
    assert r["canvases"] >= 1 and r["svg"] >= 2  # the WebGL scene and the graph's SVG are drawn
    from ctrnn_jax.analysis._explorer import explorer_figures  # noqa: F401 (the page's traces: per member)

    first, second = r["options"][0], r["options"][1]
    assert sorted(r["options"]) == [0, 1]
    owners = json.loads(text[text.index("var owners = ") + 13 :].split(";", 1)[0])
    assert r["traces"] == len(owners["state-space"])
    assert r["before"] == [o == first for o in owners["state-space"]]
    assert r["after"] == [o == second for o in owners["state-space"]]  # the selector shows the other member
    if "topology-graph" in owners:
        assert r["graph_after"] == [o == second for o in owners["topology-graph"]]
    shot = tmp_path / "shot.png"
    _chromium(
        [
            "--window-size=1200,1400",
            "--virtual-time-budget=30000",
            f"--screenshot={shot}",
            (analysed / "report.html").as_uri(),
        ],
        tmp_path,
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05  # not blank
    plot = pixels[150:800]  # the 3-D plot's area: drawn, in more than a few colours
    assert len(np.unique((plot * 255).astype(int).reshape(-1, 3), axis=0)) > 20
