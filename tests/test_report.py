"""``noisyseg report``: the files it writes, its figures against the cleanlab-compatible API and
detect, bad input, and the page in a real browser (skipped without Chromium)."""

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, camvid_view

import noisyseg
from noisyseg.io import Dataset, LabelDir, ProbsDir


def local_references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def stacked(c, split):
    ds = Dataset(c["data"])
    ids = ds.ids(split)
    labels = np.stack([LabelDir(c["noisy"]).read(i, ds.num_classes) for i in ids])
    probs = np.stack([ProbsDir(c["probs"]).read(i, ds.num_classes) for i in ids])
    return ds, ids, labels, probs


def test_report_files_and_figures(cli, shapes_chain, tmp_path):
    c = shapes_chain
    out = tmp_path / "report"
    result = cli("report", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                 "--out", out, "--worst", "3", "--json")
    assert result.code == 0, result
    report = json.loads(result.out)
    for name in ("index.html", "report.json", "report-weak.json", "images.csv", "confusions.csv", "classes.csv"):
        assert (out / name).is_file(), name
    html = (out / "index.html").read_text()
    refs = local_references(html)
    assert refs and not [r for r in refs if "://" in r or r.startswith("/")]  # relative, no network
    for ref in refs:
        assert (out / ref).is_file(), ref
    assert len(report["gallery"]) == 3 and len(list((out / "gallery").glob("*.png"))) == 3 * 5
    assert {p["file"].split("-", 1)[1] for p in report["gallery"][0]["panels"]} == \
        {"photo.png", "given.png", "predicted.png", "flagged.png", "truth.png"}

    # The figures are those of the cleanlab-compatible API on the same inputs.
    ds, ids, labels, probs = stacked(c, "weak")
    flags = noisyseg.find_label_issues(labels, probs, verbose=False)
    assert report["flags_from"] == "cleanlab rule" and report["flagged_pixels"] == int(flags.sum()) > 0
    assert report["cleanlab_rule"]["issues"] >= report["flagged_pixels"]
    image_scores, _ = noisyseg.get_label_quality_scores(labels, probs, verbose=False)
    for i, image_id in enumerate(ids):
        assert report["image_scores"][image_id] == pytest.approx(image_scores[i], abs=1e-12)
    assert [g["id"] for g in report["gallery"]] == [ids[i] for i in np.argsort(image_scores)[:3]]
    table = noisyseg.common_label_issues(flags, labels, probs, class_names=ds.classes, top=100, verbose=False)
    assert [(r["given"], r["predicted"], r["pixels"]) for r in report["confusions"]] == \
        [(r["given_label"], r["predicted_label"], r["num_pixel_issues"]) for r in table.to_dict("records")][:20]
    rows = list(csv.DictReader((out / "images.csv").open()))
    assert [r["id"] for r in rows][:3] == [g["id"] for g in report["gallery"]] and len(rows) == len(ids)
    per_image = flags.reshape(len(ids), -1).mean(1)
    for r in rows:
        assert float(r["flagged_share"]) == pytest.approx(per_image[ids.index(r["id"])], abs=1e-5)
    # Ground truth is there: label quality, detection quality, calibration.
    gt = np.stack([ds.load_mask(i) for i in ids])
    assert report["label_quality"]["given labels"]["precision"] == pytest.approx(float((gt == labels).mean()))
    assert report["detection_quality"]["precision"] == pytest.approx(float((gt != labels)[flags].mean()))
    assert 0 <= report["calibration"]["ece"] <= 1 and report["calibration"]["against"] == "ground truth"
    evaluated = json.loads(cli("evaluate", c["data"], "--split", "weak", "--probs", c["probs"], "--json").out)
    assert report["calibration"]["ece"] == pytest.approx(evaluated["probs"]["ece"], abs=1e-9)
    assert report["label_quality"]["model argmax"]["miou"] == pytest.approx(evaluated["probs"]["miou"])
    if "skipped" not in report["plots"]:
        assert set(report["plots"]) == {"image_scores", "noise_scores", "reliability", "precision_recall"}
    classes = {r["class"]: r for r in csv.DictReader((out / "classes.csv").open())}
    assert set(classes) == set(ds.classes)
    assert sum(int(r["pixels"]) for r in classes.values()) == report["pixels"]

    # The same command again rewrites the report; other inputs are refused without --force.
    assert cli("report", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
               "--out", out, "--worst", "3").code == 0
    assert_one_line_error(cli("report", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                              "--out", out, "--worst", "2"), "--force")
    assert cli("report", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
               "--out", out, "--worst", "2", "--force").code == 0
    assert len(list((out / "gallery").glob("*.png"))) == 2 * 5  # no stale pictures


def test_report_of_detect_output(cli, shapes_chain, tmp_path):
    c = shapes_chain
    detect = cli("detect", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                 "--strategy", "small-loss", "-p", "theta=auto", "-p", "calibrate_split=strong",
                 "--out", tmp_path / "clean", "--scores", "--json")
    assert detect.code == 0, detect
    detected = json.loads(detect.out)
    result = cli("report", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                 "--cleaned", tmp_path / "clean", "--scores", tmp_path / "clean" / "scores",
                 "--corrected", tmp_path / "clean", "--out", tmp_path / "report", "--worst", "2", "--json")
    assert result.code == 0, result
    report = json.loads(result.out)
    assert report["flags_from"] == "cleaned" and "cleanlab_rule" not in report
    assert report["flagged_share"] == pytest.approx(detected["flagged_share"])
    q, dq = report["detection_quality"], detected["detection_quality"]
    for key in ("precision", "recall", "f1", "auroc"):
        assert q[key] == pytest.approx(dq[key]), key
    assert report["label_quality"]["cleaned labels"]["precision"] == \
        pytest.approx(detected["cleaned_label_quality"]["precision"])
    assert {"corrected labels", "cleaned labels", "given labels", "model argmax"} <= set(report["label_quality"])
    assert "corrected.png" in {p["file"].split("-", 1)[1] for p in report["gallery"][0]["panels"]}
    if "skipped" not in report["plots"]:
        assert "theta_curve" in report["plots"]


def test_report_without_ground_truth_or_matplotlib(cli, shapes_chain, tmp_path, monkeypatch):
    c = shapes_chain
    data = tmp_path / "data"
    shutil.copytree(c["data"], data, ignore=shutil.ignore_patterns("masks"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = cli("report", data, "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                 "--out", tmp_path / "report", "--worst", "1")
    assert result.code == 0, result
    assert "plots skipped" in result.err and "noisyseg[report]" in result.err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert not report["ground_truth"] and "label_quality" not in report and "skipped" in report["plots"]
    assert report["calibration"]["against"] == "given labels"
    assert {p["file"].split("-", 1)[1] for p in report["gallery"][0]["panels"]} == \
        {"photo.png", "given.png", "predicted.png", "flagged.png"}
    html = (tmp_path / "report" / "index.html").read_text()
    assert "Plots skipped" in html
    for ref in local_references(html):
        assert (tmp_path / "report" / ref).is_file(), ref


def test_report_bad_inputs(cli, shapes_chain, tmp_path):
    c = shapes_chain
    base = ["report", c["data"], "--labels", c["noisy"], "--out", tmp_path / "out"]
    partial = tmp_path / "probs"
    partial.mkdir()
    for p in sorted(Path(c["probs"]).glob("weak_000[0-3].npy")):
        shutil.copy(p, partial / p.name)
    assert_one_line_error(cli(*base, "--split", "weak", "--probs", partial), "weak_0004.npy",
                          "for every image of split 'weak'", "4 of 8 images missing")
    assert_one_line_error(cli(*base, "--split", "weak", "--probs", tmp_path / "nowhere"), "nowhere", "no such directory")
    assert_one_line_error(cli(*base, "--split", "nosuch", "--probs", c["probs"]), "nosuch.txt", "known splits")
    (partial / "weak_0004.npy").write_bytes(b"not an array")
    for p in sorted(Path(c["probs"]).glob("weak_000[5-7].npy")):
        shutil.copy(p, partial / p.name)
    assert_one_line_error(cli(*base, "--split", "weak", "--probs", partial), "weak_0004.npy", "unreadable")
    assert not (tmp_path / "out").exists()

    data = tmp_path / "data"
    shutil.copytree(c["data"], data)
    meta = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps(meta | {"palette": meta["palette"][:3]}))
    assert_one_line_error(cli("report", data, "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                              "--out", tmp_path / "out"), "dataset.json", "for each of the 5 classes", "3 colours")
    assert not (tmp_path / "out").exists()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHECK = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));
  const p = document.createElement("pre"); p.id = "image-check";
  p.textContent = JSON.stringify({images: imgs.length, broken});
  document.body.appendChild(p);
});
</script></body>"""


def render_check(report_dir: Path, tmp_path: Path) -> dict:
    """Loads the page in headless Chromium (a copy with a checking script beside it) and returns
    ``{"images": n, "broken": [src, ...]}``; also writes a screenshot to tmp_path/page.png."""
    browser = chromium()
    page = report_dir / "index.html"
    probe = report_dir / "check.html"
    probe.write_text(page.read_text().replace("</body>", CHECK))
    try:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                 "--virtual-time-budget=10000"]
        dom = subprocess.run([browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                             timeout=120).stdout
        subprocess.run([browser, *flags, f"--screenshot={tmp_path / 'page.png'}", "--window-size=1400,2400",
                        page.as_uri()], capture_output=True, timeout=120)
    finally:
        probe.unlink()
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_report_renders_in_chromium(cli, shapes_chain, tmp_path):
    if not chromium():
        pytest.skip("needs Chromium (apt-get install chromium)")
    c = shapes_chain
    out = tmp_path / "report"
    assert cli("report", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
               "--out", out, "--worst", "2").code == 0
    check = render_check(out, tmp_path)
    assert check["images"] >= 2 * 5 and check["broken"] == []
    assert (tmp_path / "page.png").stat().st_size > 10_000


@pytest.mark.camvid
@pytest.mark.slow
def test_camvid_report_renders(cli, camvid_root, tmp_path):
    """A few CamVid images with noisy labels (corrupt) and probs that favour the ground truth: the
    gallery shows the photos and the page loads every picture."""
    if not chromium():
        pytest.skip("needs Chromium (apt-get install chromium)")
    from noisyseg.pipeline.corrupt import corrupt

    ds = Dataset(camvid_root)
    ids = ds.ids("train")[:4]
    view = camvid_view(camvid_root, tmp_path, ids)
    corrupt(view, "few", tmp_path / "noisy", seed=0)
    rng = np.random.default_rng(0)
    probs = ProbsDir(tmp_path / "probs")
    for image_id in ids:
        gt = ds.load_mask(image_id)
        logits = rng.normal(0, 1, (ds.num_classes, *gt.shape)).astype(np.float32)
        np.put_along_axis(logits, np.where(gt == 255, 0, gt)[None].astype(np.int64), 4.0, 0)
        p = np.exp(logits - logits.max(0))
        probs.write(image_id, p / p.sum(0))
    out = tmp_path / "report"
    result = cli("report", view, "--split", "few", "--labels", tmp_path / "noisy", "--probs", tmp_path / "probs",
                 "--out", out, "--worst", "4", "--json")
    assert result.code == 0, result
    report = json.loads(result.out)
    assert report["detection_quality"]["precision"] > report["detection_quality"]["noise_rate"]
    check = render_check(out, tmp_path)
    assert check["images"] >= 4 * 5 and check["broken"] == []


def test_report_failing_late_leaves_the_previous_report(cli, shapes_chain, tmp_path):
    """A ground-truth mask of the wrong size is only read in the second pass: the run fails with one
    line, the previous report stays whole and no staging directory is left."""
    c = shapes_chain
    data = tmp_path / "data"
    shutil.copytree(c["data"], data)
    args = ["report", data, "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"], "--out",
            tmp_path / "report", "--worst", "1"]
    assert cli(*args).code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "report").rglob("*") if p.is_file()}
    LabelDir(data / "masks").write("weak_0005", np.zeros((10, 10), np.uint8))
    assert_one_line_error(cli(*args), "weak_0005.png", "size 48x48")
    assert {p.name: p.read_bytes() for p in (tmp_path / "report").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "report"]


def test_report_out_naming_a_file_is_refused(cli, shapes_chain, tmp_path):
    c = shapes_chain
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    for extra in ((), ("--force",)):
        result = cli("report", c["data"], "--split", "weak", "--labels", c["noisy"], "--probs", c["probs"],
                     "--out", target, *extra)
        assert_one_line_error(result, str(target), "a file")
    assert target.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
