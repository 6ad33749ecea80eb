"""``noisyseg report``: a self-contained HTML report on the labels of one split, with PNGs, CSV and JSON.

Two streaming passes over the split, a batch of same-size images at a time (memory bounded by a
batch, as in ``detect``):

1. each image's label-quality score (cleanlab's softmin over the own-label probability,
   :mod:`noisyseg.metrics.softmin`) and, when no ``cleaned`` dir is given, the statistics of
   cleanlab's label-issue rule (:mod:`noisyseg.metrics.label_issues`);
2. the flagged pixels (detect's output: pixels it set to 255; else cleanlab's rule), confusions
   (given -> predicted class) over them, the per-class table, calibration, label and detection
   quality against ground truth where the dataset has masks, and the gallery of the worst images.

Nothing is written before the first pass has read (and so checked) every probs and label file.
The report is then built in a staging directory beside ``out`` and renamed into place when it is
complete, so a failure (a bad mask met in pass 2) leaves the previous report, or nothing, behind.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import InputError, ParameterError
from noisyseg.io import Dataset, LabelDir, ProbsDir
from noisyseg.io.atomic import atomic_write, replace_dir, write_json
from noisyseg.io.dirs import check_finite
from noisyseg.io.palette import dataset_palette
from noisyseg.metrics import CalibrationError, DetectionQuality, LabelQuality
from noisyseg.metrics.detection import float16_from_keys, split_histograms
from noisyseg.metrics.label_issues import IssueRule
from noisyseg.metrics.softmin import softmin_scores
from noisyseg.ops.label_confidence import LabelConfidence, label_confidence
from noisyseg.pipeline.common import RUN_FILE, Timer, Track, no_track, select_device, write_report
from noisyseg.pipeline.output import replacing_marker
from noisyseg.pipeline.detect import iter_batches
from noisyseg.strategies.detection.base import Batch

TOP_CONFUSIONS = 20


def report(dataset: str | Path, split: str, labels: str | Path, probs: str | Path, out: str | Path,
           cleaned: str | Path | None = None, scores: str | Path | None = None, corrected: str | Path | None = None,
           worst: int = 12, batch_size: int = 4, device: str = "auto", force: bool = False,
           track: Track = no_track) -> dict:
    """Writes ``out/index.html`` (+ ``report.json``, ``images.csv``, ``confusions.csv``,
    ``classes.csv``, ``plots/*.png``, ``gallery/*.png``) and returns the report.

    Args:
        labels: the label dir the report is about (e.g. noisy labels).
        probs: probs dir of a model for ``split``.
        cleaned: detect's output for these labels (flagged pixels are 255); without it, pixels are
            flagged by cleanlab's rule.
        scores: detect's ``scores/`` dir (float16 ``(H, W)`` noise scores); default 1 - own-label probability.
        corrected: a corrected label dir, drawn in the gallery and scored against ground truth.
        worst: how many of the lowest-scoring images the gallery shows.
    """
    if worst < 0:
        raise ParameterError(f"--worst: expected a count >= 0, found {worst}")
    run = _Run(dataset, split, labels, probs, cleaned, scores, corrected, worst, batch_size, device, track)
    run.first_pass()
    marker = replacing_marker(out, "report", run.params, force)  # another run's directory needs --force
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.report-", dir=out.parent))
    try:
        run.second_pass(work)
        result = run.write(work)
        write_json(work / RUN_FILE, marker)
        replace_dir(work, out)  # the previous report stays whole until the new one is complete
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return result


class _Run:
    """One report: its checked inputs, then pass 1, pass 2 (into a directory) and the files."""

    def __init__(self, dataset, split, labels, probs, cleaned, scores, corrected, worst, batch_size, device, track):
        self.ds = ds = Dataset(dataset)
        self.split, self.worst, self.track = split, worst, track
        self.ids = ds.ids(split)
        if not self.ids:
            raise InputError(ds.root / "splits" / f"{split}.txt", "at least one image id", "an empty split")
        self.palette = dataset_palette(ds)
        self.labels, self.probs = LabelDir(labels).require(), ProbsDir(probs).require()
        self.cleaned = LabelDir(cleaned).require() if cleaned is not None else None
        self.corrected = LabelDir(corrected).require() if corrected is not None else None
        self.scores = ProbsDir(scores).require() if scores is not None else None  # <id>.npy noise scores
        named = {"labels": self.labels, "probs": self.probs, "cleaned": self.cleaned, "corrected": self.corrected,
                 "scores": self.scores}
        for name, d in named.items():
            if d is not None:
                _require_every_file(d, self.ids, split, name)
        self.params = {"dataset": str(ds.root.resolve()), "split": split,
                       **{k: str(d.root.resolve()) if d is not None else None for k, d in named.items()},
                       "worst": worst}
        self.has_gt = all(ds.has_mask(i) for i in self.ids)
        self.device = select_device(device)
        self.batch_size = batch_size
        self.timer = Timer()

    def batches(self, description: str, with_gt: bool):
        it = iter_batches(self.ds, self.ids, self.labels, self.probs, self.device, self.batch_size, with_gt=with_gt)
        return self.track(self.timer.iterate(it, "read"), -(-len(self.ids) // self.batch_size), description)

    def kept_batches(self, description: str):
        """Pass 2's batches from what pass 1 kept: ``(Batch without probs, LabelConfidence)``."""
        def read():
            for ids, b in self.kept:
                gt = None
                if self.has_gt:
                    size = tuple(b["labels"].shape[-2:])
                    gt = torch.from_numpy(np.stack([self.ds.load_mask(i, size) for i in ids]).astype(np.int64))
                    gt = gt.to(self.device)
                conf = LabelConfidence(b["p_label"].to(self.device), b["best"].to(self.device, torch.int64),
                                       b["p_best"].to(self.device))
                yield Batch(ids, None, b["labels"].to(self.device, torch.int64), gt), conf
        return self.track(self.timer.iterate(read(), "read"), len(self.kept.index), description)

    def first_pass(self) -> None:
        """Image scores and, without detect's output, the statistics of cleanlab's rule; every
        probs and label file is read (and so checked) here, before anything is written."""
        self.image_score: dict[str, float] = {}
        rule = IssueRule(self.ds.num_classes) if self.cleaned is None else None
        self.kept = _Kept()
        for b in self.batches(f"report {self.split}: scores", with_gt=False):
            with self.timer("score"):
                conf = label_confidence(b.probs, b.labels)
                self.kept.write(b.ids, {"p_label": conf.p_label, "p_best": conf.p_best, "best": conf.best,
                                        "labels": b.labels})
                valid = b.labels != IGNORE_INDEX
                self.image_score.update(zip(b.ids, softmin_scores(conf.p_label, valid).tolist()))
                if rule is not None:
                    rule.update(conf.p_label, conf.best, conf.p_best, b.labels, valid)
        self.cutoff = rule.cutoff() if rule is not None else None
        self.ranked = sorted(self.ids, key=lambda i: (np.isnan(self.image_score[i]), self.image_score[i]))

    def second_pass(self, out: Path) -> None:
        """Flags and every figure that needs them; the gallery's pictures into ``out`` on the way."""
        C = self.ds.num_classes
        gallery_rank = {image_id: r for r, image_id in enumerate(self.ranked[: self.worst])}
        flagger = self.cutoff.flagger() if self.cutoff is not None else None
        self.figures = acc = _Figures(C, self.ds.classes, self.has_gt, self.cleaned is not None,
                                      self.corrected is not None)
        self.gallery = []
        for b, conf in self.kept_batches(f"report {self.split}: figures"):
            with self.timer("figures"):
                size = tuple(b.labels.shape[-2:])
                valid = b.labels != IGNORE_INDEX
                cleaned = _stack(self.cleaned, b.ids, C, size, self.device) if self.cleaned else None
                corrected = _stack(self.corrected, b.ids, C, size, self.device) if self.corrected else None
                if cleaned is not None:
                    flags = (cleaned == IGNORE_INDEX) & valid
                else:
                    flags = flagger(conf.p_label, valid, conf.best != b.labels)
                noise = _read_scores(self.scores, b.ids, size, self.device) if self.scores else 1 - conf.p_label
                acc.update(b, conf, valid, flags, noise, cleaned, corrected)
            with self.timer("gallery"):
                for k, image_id in enumerate(b.ids):
                    if image_id in gallery_rank:
                        self.gallery.append(_draw(out, gallery_rank[image_id], image_id, self.ds, b, k, conf.best[k],
                                                  flags[k], corrected, self.palette, self.image_score[image_id], acc))
        self.gallery.sort(key=lambda g: g["rank"])
        self.kept.close()

    def write(self, out: Path) -> dict:
        """report.json, the CSVs, the plots and index.html (last) into ``out``; returns the report."""
        with self.timer("write"):
            result = self.figures.summary()
            result["image_scores"] = {i: self.image_score[i] for i in self.ranked}
            plots = _plots(out, self.figures, result, _detect_report(self.cleaned, self.scores, self.split))
            rows = _image_rows(self.ranked, self.image_score, self.figures)
            _write_csv(out / "images.csv", list(rows[0]), [list(r.values()) for r in rows])
            _write_csv(out / "confusions.csv", ["given", "predicted", "pixels", "share_of_given"],
                       [[c["given"], c["predicted"], c["pixels"], c["share_of_given"]] for c in result["all_confusions"]])
            _write_csv(out / "classes.csv", list(result["classes"][0]), [list(c.values()) for c in result["classes"]])
            cutoff = self.cutoff
            rule = {} if cutoff is None else {"cleanlab_rule": {
                "issues": cutoff.issues, "own_label_probability_cutoff": cutoff.theta,
                "class_thresholds": dict(zip(self.ds.classes, cutoff.thresholds))}}
            report = {"command": "report", **self.params, "images": len(self.ids), "ground_truth": self.has_gt,
                      "flags_from": "cleaned" if self.cleaned is not None else "cleanlab rule", **rule,
                      **{k: v for k, v in result.items() if k != "all_confusions"},
                      "confusions": result["all_confusions"][:TOP_CONFUSIONS],
                      "worst_images": rows[: self.worst], "gallery": self.gallery, "plots": plots,
                      "timings": self.timer.seconds}
            report = write_report(out, report)
            from noisyseg.render.html import page

            html = page(report, rows, self.palette, self.ds.classes)
            atomic_write(out / "index.html", lambda f: f.write(html), mode="w")
        return report


def _require_every_file(d, ids: list[str], split: str, what: str) -> None:
    missing = [i for i in ids if not d.exists(i)]
    if missing:
        raise InputError(d.path(missing[0]), f"a file in the {what} dir for every image of split '{split}'",
                         f"no such file ({len(missing)} of {len(ids)} images missing)")


def _stack(label_dir: LabelDir, ids: list[str], C: int, size, dev) -> torch.Tensor:
    return torch.from_numpy(np.stack([label_dir.read(i, C, size) for i in ids]).astype(np.int64)).to(dev)


def _read_scores(score_dir, ids: list[str], size, dev) -> torch.Tensor:
    """detect's noise scores ``(B, H, W)`` float16 (as detect writes them), validated."""
    out = []
    for image_id in ids:
        path = score_dir.path(image_id)
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise InputError(path, "a .npy file of noise scores", f"an unreadable file ({e})") from None
        if arr.dtype.kind != "f" or arr.shape != tuple(size):
            raise InputError(path, f"float noise scores of shape {tuple(size)}", f"shape {arr.shape} dtype {arr.dtype}")
        check_finite(arr, path)
        out.append(arr)
    return torch.from_numpy(np.stack(out)).to(dev)


class _Kept:
    """What pass 2 needs of pass 1's batches, 6 bytes a pixel instead of the probs' 2C: each pixel's
    label and own-label probability, most probable class and its probability (float16 and uint8:
    labels and classes are below 256), in an anonymous temporary file, so memory stays one batch
    and pass 2 reads neither the probs nor the label PNGs again."""

    FIELDS = (("p_label", np.float16), ("p_best", np.float16), ("best", np.uint8), ("labels", np.uint8))

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        self.index: list[tuple[list[str], tuple[int, int]]] = []

    def write(self, ids: list[str], tensors: dict[str, torch.Tensor]) -> None:
        for name, dtype in self.FIELDS:
            self.file.write(np.ascontiguousarray(tensors[name].cpu().numpy().astype(dtype, copy=False)).data)
        self.index.append((list(ids), tuple(tensors["labels"].shape[-2:])))

    def __iter__(self):
        """``(ids, {field: (B, H, W) tensor})`` per batch, in the order they were written."""
        self.file.seek(0)
        for ids, (h, w) in self.index:
            count = len(ids) * h * w
            yield ids, {name: torch.from_numpy(np.fromfile(self.file, dtype=dtype, count=count).reshape(len(ids), h, w))
                        for name, dtype in self.FIELDS}

    def close(self) -> None:
        self.file.close()


class _Figures:
    """Everything pass 2 counts, streamed: per image, per class, confusions, calibration, quality."""

    def __init__(self, C: int, classes: list[str], has_gt: bool, has_cleaned: bool, has_corrected: bool):
        self.C, self.classes, self.has_gt = C, classes, has_gt
        self.pairs = torch.zeros(C * C, dtype=torch.int64)  # (given, predicted) over valid pixels
        self.flagged_pairs = torch.zeros(C * C, dtype=torch.int64)
        self.per_image: dict[str, dict] = {}
        self.ignored = 0
        self.calibration = CalibrationError()
        self.score_hist: tuple[torch.Tensor, torch.Tensor] | None = None  # (not flagged, flagged) without GT
        if has_gt:
            self.detection = DetectionQuality()
            self.quality = {"given labels": LabelQuality(C, classes), "model argmax": LabelQuality(C, classes)}
            if has_cleaned:
                self.quality["cleaned labels"] = LabelQuality(C, classes)
            if has_corrected:
                self.quality["corrected labels"] = LabelQuality(C, classes)

    def update(self, b, conf, valid, flags, noise, cleaned, corrected) -> None:
        """One batch: ``conf`` of ``label_confidence``; ``valid``, ``flags`` ``(B, H, W)`` bool;
        ``noise`` the noise score; ``cleaned``/``corrected`` labels or None."""
        C, K = self.C, self.C + 1
        # int32 codes built in place: these are the pass's heaviest arrays.
        given = b.labels.to(torch.int32).masked_fill_(~valid, C)  # C stands for 255 in the joint counts
        best = conf.best.to(torch.int32)
        B = len(b.ids)
        image = torch.arange(B, dtype=torch.int32, device=given.device).view(B, 1, 1)
        # (image, given, predicted, flagged) in one bincount
        code = (given * (2 * C)).add_(best, alpha=2).add_(flags).add_(image, alpha=K * C * 2)
        counts = torch.bincount(code.view(-1), minlength=B * K * C * 2).reshape(B, K, C, 2).cpu()
        self.pairs += counts[:, :C].sum((0, 3)).reshape(-1)
        self.flagged_pairs += counts[:, :C, :, 1].sum(0).reshape(-1)
        self.ignored += int(counts[:, C].sum())
        n_valid = counts[:, :C].sum((1, 2, 3)).tolist()
        n_flag = counts[:, :C, :, 1].sum((1, 2)).tolist()
        if self.has_gt:
            truth = b.gt.to(torch.int32)
            truth.masked_fill_(truth == IGNORE_INDEX, C)
            checked = valid & (truth < C)
            self.detection.add_scores(noise, checked & (truth != given), checked)
            # (image, ground truth, given, flagged): the given labels' quality, the flags' against the true noise
            code = torch.mul(truth, 2 * K, out=code).add_(given, alpha=2).add_(flags).add_(image, alpha=K * K * 2)
            joint = torch.bincount(code.view(-1), minlength=B * K * K * 2).reshape(B, K, K, 2).cpu()
            self.quality["given labels"].add_confusion(joint.sum((0, 3)), B)
            right = torch.diagonal(joint[:, :C, :C], dim1=1, dim2=2).sum(2)  # (B, 2): right labels, (not) flagged
            labelled = joint[:, :C, :C].sum((1, 2))  # (B, 2)
            tp, fp = int(labelled[:, 1].sum() - right[:, 1].sum()), int(right[:, 1].sum())
            fn, tn = int(labelled[:, 0].sum() - right[:, 0].sum()), int(right[:, 0].sum())
            self.detection.add_counts(tp=tp, fp=fp, fn=fn, tn=tn)
            n_checked, n_wrong = labelled.sum(1).tolist(), (labelled - right).sum(1).tolist()
            code = torch.mul(truth, C, out=code).add_(best)
            argmax = torch.bincount(code.view(-1), minlength=K * C).reshape(K, C).cpu()
            self.quality["model argmax"].add_confusion(torch.cat([argmax, torch.zeros(K, 1, dtype=argmax.dtype)], 1), B)
            if cleaned is not None:
                self.quality["cleaned labels"].update(b.gt, cleaned)
            if corrected is not None:
                self.quality["corrected labels"].update(b.gt, corrected)
            self.calibration.add(conf.p_best, conf.best, b.gt)
        else:
            n_checked = n_wrong = [None] * len(b.ids)
            self.calibration.add(conf.p_best, conf.best, b.labels)
            hist = split_histograms(noise, flags, valid)
            self.score_hist = hist if self.score_hist is None else (self.score_hist[0] + hist[0],
                                                                    self.score_hist[1] + hist[1])
        for k, image_id in enumerate(b.ids):
            self.per_image[image_id] = {
                "pixels": n_valid[k], "flagged": n_flag[k],
                "noise_rate": (n_wrong[k] / n_checked[k] if n_checked[k] else float("nan")) if self.has_gt else None}

    def summary(self) -> dict:
        C, names = self.C, self.classes
        pairs = self.pairs.reshape(C, C).numpy()
        flagged = self.flagged_pairs.reshape(C, C).numpy()
        given = pairs.sum(1)
        pixels, n_flagged = int(pairs.sum()), int(flagged.sum())
        out: dict = {"pixels": pixels, "ignored_pixels": self.ignored, "flagged_pixels": n_flagged,
                     "flagged_share": n_flagged / pixels if pixels else float("nan")}
        g, p = np.nonzero(flagged)
        order = np.argsort(-flagged[g, p], kind="stable")
        out["all_confusions"] = [{"given": names[g[i]], "predicted": names[p[i]], "pixels": int(flagged[g[i], p[i]]),
                                  "share_of_given": float(flagged[g[i], p[i]] / given[g[i]])} for i in order]
        classes = []
        for k, name in enumerate(names):
            row = {"class": name, "pixels": int(given[k]), "share": _ratio(given[k], pixels),
                   "model_agrees": _ratio(pairs[k, k], given[k]), "flagged_share": _ratio(flagged[k].sum(), given[k])}
            if self.has_gt:  # the given labels' confusion with the ground truth: rows truth, columns given
                cm = self.quality["given labels"].cm.matrix
                row["noise_rate"] = _ratio(cm[:, k].sum() - cm[k, k], cm[:, k].sum())
                row["iou_given"] = self.quality["given labels"].cm.iou()[k]
            classes.append({key: (None if isinstance(v, float) and np.isnan(v) else v) for key, v in row.items()})
        out["classes"] = classes
        out["calibration"] = {"ece": self.calibration.ece(), "against": "ground truth" if self.has_gt else "given labels"}
        if self.has_gt:
            out["detection_quality"] = self.detection.summary()
            out["label_quality"] = {name: q.summary() for name, q in self.quality.items()}
        return out


def _ratio(a, b) -> float:
    return float(a) / float(b) if b else float("nan")


def _draw(out: Path, rank: int, image_id: str, ds: Dataset, b, k: int, best, flags, corrected_t, palette,
          score: float, acc: _Figures) -> dict:
    from noisyseg.render.images import gallery_panels, save_png

    panels = gallery_panels(ds.load_image(image_id), b.labels[k].to(torch.uint8).cpu().numpy(),
                            best.to(torch.uint8).cpu().numpy(), flags.cpu().numpy(), palette,
                            corrected=corrected_t[k].to(torch.uint8).cpu().numpy() if corrected_t is not None else None,
                            truth=b.gt[k].to(torch.uint8).cpu().numpy() if b.gt is not None else None)
    files = []
    for name, title, rgb in panels:
        rel = f"gallery/{rank + 1:03d}-{name}.png"
        save_png(out / rel, rgb)
        files.append({"file": rel, "title": title})
    info = acc.per_image[image_id]
    return {"rank": rank + 1, "id": image_id, "score": score, "flagged_share": _ratio(info["flagged"], info["pixels"]),
            "noise_rate": info["noise_rate"], "panels": files}


def _image_rows(ranked: list[str], image_score: dict, acc: _Figures) -> list[dict]:
    rows = []
    for r, image_id in enumerate(ranked):
        info = acc.per_image[image_id]
        row = {"rank": r + 1, "id": image_id, "score": image_score[image_id], "pixels": info["pixels"],
               "flagged_share": _ratio(info["flagged"], info["pixels"])}
        if acc.has_gt:
            row["noise_rate"] = info["noise_rate"]
        rows.append(row)
    return rows


def _detect_report(cleaned: LabelDir | None, scores: ProbsDir | None, split: str) -> dict | None:
    """detect's report for the split (report-<split>.json, else report.json) from the cleaned dir
    or the scores dir's parent, when there is one."""
    for d in filter(None, (cleaned.root if cleaned else None, scores.root.parent if scores else None)):
        for name in (f"report-{split}.json", "report.json"):
            path = Path(d) / name
            if path.is_file():
                try:
                    data = json.loads(path.read_text())
                except json.JSONDecodeError:
                    continue
                if isinstance(data, dict) and data.get("command") == "detect":
                    return data
    return None


def _plots(out: Path, acc: _Figures, result: dict, detect_report: dict | None) -> dict:
    """Draws the plots into ``out/plots``; ``{name: file}``, or ``{"skipped": reason}`` without matplotlib."""
    from noisyseg.render import plots

    if not plots.available():
        return {"skipped": f"matplotlib is not installed: {plots.INSTALL_HINT}"}
    drawn = {}

    def save(name: str, png: bytes) -> None:
        rel = f"plots/{name}.png"
        atomic_write(out / rel, lambda f: f.write(png))
        drawn[name] = rel

    scores = np.array([v for v in result["image_scores"].values()], float)
    save("image_scores", plots.image_scores(scores))
    values = float16_from_keys(torch.arange(1 << 16)).numpy()
    if acc.has_gt:
        ranking = acc.detection.ranking
        counts = {"right labels": ranking.neg.numpy(), "wrong labels (ground truth)": ranking.pos.numpy()}
    else:
        counts = {"not flagged": acc.score_hist[0].numpy(), "flagged": acc.score_hist[1].numpy()}
    save("noise_scores", plots.score_histograms(values, counts, "pixel noise score"))
    curve = (detect_report or {}).get("fitted", {}).get("curve")
    if curve:
        save("theta_curve", plots.theta_curve(curve))
    cal = acc.calibration
    save("reliability", plots.reliability(cal.count.numpy(), cal.correct.numpy(), cal.confidence.numpy(),
                                          result["calibration"]["ece"], result["calibration"]["against"]))
    if acc.has_gt:
        q = result["detection_quality"]
        recall, precision = acc.detection.ranking.precision_recall_curve()
        if recall.size:
            save("precision_recall", plots.precision_recall(recall, precision, q["noise_rate"],
                                                            (q["recall"], q["precision"]), q.get("average_precision", float("nan"))))
    return drawn


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None or (isinstance(v, float) and np.isnan(v)) else
                         (f"{v:.6g}" if isinstance(v, float) else v) for v in row])
    atomic_write(path, lambda f: f.write(buf.getvalue()), mode="w")
