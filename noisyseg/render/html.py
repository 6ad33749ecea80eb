"""The report's ``index.html``: one self-contained page (inline CSS, no script, no network) whose
pictures are PNG files beside it, referenced by relative paths."""

from __future__ import annotations

import math
from html import escape
from urllib.parse import quote

IMAGE_ROWS = 50  # rows of the per-image table on the page (images.csv has them all)

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1500px;
       padding: 0 16px; color: #222; background: #fff; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
.muted { color: #666; } code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #fafafa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #999; vertical-align: -1px;
          margin-right: 4px; }
.legend span.item { margin-right: 14px; white-space: nowrap; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; } .plots img { border: 1px solid #eee; height: 330px; width: auto; }
.item-row { margin: 18px 0; } .panels { display: flex; flex-wrap: wrap; gap: 6px; }
figure { margin: 0; } figure img { width: 240px; border: 1px solid #ddd; } .plots figure img { width: auto; }
img.label { image-rendering: pixelated; }
figcaption { font-size: 12px; color: #555; }
.note { background: #fff8e1; border: 1px solid #f0d98c; padding: 6px 10px; }
"""


def _num(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return escape(str(v))


def _pct(v) -> str:
    return "–" if v is None or math.isnan(v) else f"{100 * v:.1f}%"


def _table(header: list[str], rows: list[list], raw_columns: tuple[int, ...] = ()) -> str:
    """A table; cells of ``raw_columns`` are HTML already, numbers are right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for k, v in enumerate(row):
            if k in raw_columns:
                cells.append(f"<td>{v}</td>")
            elif isinstance(v, (int, float)) or v is None:
                cells.append(f'<td class="n">{_num(v)}</td>')
            else:
                cells.append(f"<td>{escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _swatch(rgb) -> str:
    return f'<span class="swatch" style="background: rgb({rgb[0]}, {rgb[1]}, {rgb[2]})"></span>'


def _named(name: str, colours: dict[str, list[int]]) -> str:
    return _swatch(colours[name]) + escape(name)


def _img(path: str, alt: str, css_class: str = "") -> str:
    cls = f' class="{css_class}"' if css_class else ""
    return f'<a href="{quote(path)}"><img src="{quote(path)}" alt="{escape(alt)}"{cls}></a>'


def page(report: dict, image_rows: list[dict], palette: list[list[int]], classes: list[str]) -> str:
    """The page for a report dict as ``noisyseg.pipeline.report.report`` returns it."""
    colours = dict(zip(classes, palette))
    parts = [f"<h1>Label-quality report: {escape(report['split'])} split</h1>",
             '<p class="muted">' + "<br>".join(
                 f"{escape(k)}: <code>{escape(str(report[k]))}</code>"
                 for k in ("dataset", "labels", "probs", "cleaned", "scores", "corrected") if report.get(k)) + "</p>"]
    parts += _summary(report)
    parts += _plots(report)
    parts += _gallery(report, palette, classes)
    parts.append("<h2>Most common confusions among flagged pixels</h2>")
    parts.append('<p class="muted">Given class → the model\'s most probable class, over the flagged pixels; '
                 "share = of the given class's pixels. All pairs: <a href=\"confusions.csv\">confusions.csv</a>.</p>")
    parts.append(_table(["given", "predicted", "pixels", "share of given"],
                        [[_named(c["given"], colours), _named(c["predicted"], colours), c["pixels"], c["share_of_given"]]
                         for c in report["confusions"]], raw_columns=(0, 1)) if report["confusions"]
                 else "<p>No flagged pixels.</p>")
    parts += _classes(report, colours)
    parts += _images(report, image_rows)
    parts.append('<h2>Files</h2><p><a href="report.json">report.json</a> · <a href="images.csv">images.csv</a> · '
                 '<a href="confusions.csv">confusions.csv</a> · <a href="classes.csv">classes.csv</a></p>')
    versions = report.get("versions", {})
    parts.append(f'<p class="muted">noisyseg {escape(str(versions.get("noisyseg", "")))}, '
                 f'torch {escape(str(versions.get("torch", "")))}</p>')
    title = f"noisyseg report: {report['split']}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _summary(report: dict) -> list[str]:
    flags_from = ("detect's output (flagged pixels set to 255)" if report["flags_from"] == "cleaned"
                  else "cleanlab's label-issue rule on these probs")
    lowest = next(iter(report.get("image_scores", {}).values()), None)  # image_scores are ranked, lowest first
    rows = [["images", report["images"]], ["labelled pixels", report["pixels"]],
            ["ignored pixels (255)", report["ignored_pixels"]], ["flagged pixels", report["flagged_pixels"]],
            ["share flagged", report["flagged_share"]], ["flags from", flags_from]]
    if "cleanlab_rule" in report:
        rows.append(["estimated label issues (cleanlab's rule)", report["cleanlab_rule"]["issues"]])
    if lowest is not None:
        rows.append(["lowest image score", lowest])
    cal = report["calibration"]
    rows.append([f"ECE of the probs (against {cal['against']})", cal["ece"]])
    if report.get("detection_quality"):
        rows.append(["true noise rate (ground truth)", report["detection_quality"]["noise_rate"]])
    out = ["<h2>Summary</h2>", _table(["", ""], rows)]
    if report.get("label_quality"):
        out.append("<h3>Label quality against ground truth</h3>")
        out.append(_table(["labels", "mIoU", "precision", "coverage", "pixel accuracy"],
                          [[name, q["miou"], q["precision"], q["coverage"], q["pixel_accuracy"]]
                           for name, q in report["label_quality"].items()]))
        q = report["detection_quality"]
        out.append("<h3>Flagged pixels against the true noise</h3>")
        out.append(_table(["precision", "recall", "F1", "AUROC (noise score)", "AP (noise score)", "noise rate"],
                          [[q["precision"], q["recall"], q["f1"], q.get("auroc"), q.get("average_precision"),
                            q["noise_rate"]]]))
    elif not report.get("ground_truth"):
        out.append('<p class="muted">The dataset has no ground-truth masks for every image of this split: '
                   "no quality figures against ground truth.</p>")
    return out


PLOT_TITLES = {"image_scores": "Image label-quality scores", "noise_scores": "Pixel noise scores",
               "theta_curve": "θ calibration (detect)", "reliability": "Reliability diagram",
               "precision_recall": "Precision-recall of the noise score"}


def _plots(report: dict) -> list[str]:
    plots = report.get("plots", {})
    if "skipped" in plots:
        return ["<h2>Plots</h2>", f'<p class="note">Plots skipped: {escape(plots["skipped"])}</p>']
    items = [f"<figure>{_img(path, PLOT_TITLES.get(name, name))}<figcaption>{escape(PLOT_TITLES.get(name, name))}"
             "</figcaption></figure>" for name, path in plots.items()]
    return ["<h2>Plots</h2>", f'<div class="plots">{"".join(items)}</div>']


def _gallery(report: dict, palette: list[list[int]], classes: list[str]) -> list[str]:
    gallery = report.get("gallery", [])
    out = [f"<h2>The {len(gallery)} lowest-scoring images</h2>"]
    if not gallery:
        return out + ["<p>No gallery (--worst 0).</p>"]
    legend = "".join(f'<span class="item">{_swatch(rgb)}{escape(name)}</span>' for name, rgb in zip(classes, palette))
    legend += f'<span class="item">{_swatch([255, 255, 255])}ignore (255)</span>'
    legend += f'<span class="item">{_swatch([255, 0, 0])}flagged</span>'
    out.append(f'<p class="legend">{legend}</p>')
    for g in gallery:
        facts = [f"score {_num(g['score'])}", f"flagged {_pct(g['flagged_share'])}"]
        if g.get("noise_rate") is not None:
            facts.append(f"truly wrong {_pct(g['noise_rate'])}")
        panels = "".join(f"<figure>{_img(p['file'], p['title'], _panel_class(p['file']))}"
                         f"<figcaption>{escape(p['title'])}</figcaption></figure>" for p in g["panels"])
        out.append(f'<div class="item-row"><b>#{g["rank"]} {escape(g["id"])}</b> '
                   f'<span class="muted">{" · ".join(facts)}</span><div class="panels">{panels}</div></div>')
    return out


def _panel_class(path: str) -> str:
    """Label pictures keep hard pixel edges when scaled; photos are smoothed."""
    return "" if path.endswith(("photo.png", "flagged.png")) else "label"


def _classes(report: dict, colours: dict) -> list[str]:
    rows = report["classes"]
    gt = "noise_rate" in rows[0]
    header = ["class", "pixels", "share", "model agrees", "flagged"] + (["truly wrong", "IoU of labels"] if gt else [])
    table = [[_named(r["class"], colours), r["pixels"], r["share"], r["model_agrees"], r["flagged_share"]]
             + ([r["noise_rate"], r["iou_given"]] if gt else []) for r in rows]
    return ["<h2>Per class</h2>",
            '<p class="muted">pixels: labelled with the class; model agrees: share of them where the model\'s '
            "argmax is the class; flagged: share of them flagged" + ("; truly wrong: share whose ground truth differs"
                                                                    if gt else "") + ".</p>",
            _table(header, table, raw_columns=(0,))]


def _images(report: dict, rows: list[dict]) -> list[str]:
    if not rows:
        return []
    names = {"rank": "rank", "id": "image", "score": "score", "pixels": "labelled pixels",
             "flagged_share": "flagged", "noise_rate": "truly wrong"}
    header = [names.get(k, k) for k in rows[0]]
    shown = rows[:IMAGE_ROWS]
    return [f"<h2>Images by label-quality score (lowest {len(shown)} of {len(rows)})</h2>",
            '<p class="muted">score: cleanlab\'s softmin of the pixels\' own-label probability (1 = the model '
            'agrees everywhere). All images: <a href="images.csv">images.csv</a>.</p>',
            _table(header, [list(r.values()) for r in shown])]
