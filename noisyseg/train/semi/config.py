"""What a semi-supervised run is: ``SemiConfig`` (what the user asked) and ``Plan`` (the method's
preset with the user's overrides applied, the values the loop reads).

The methods are presets of one loop (see ``noisyseg.train.semi.loop``):

=============  =======  ==================  =========  =====  ==========================  ===================
method         teacher  pseudo-label        weighting  τ      strong view                 loss
=============  =======  ==================  =========  =====  ==========================  ===================
fixmatch       self     argmax              -          0.95   colour, grey, blur, cutmix  (L_x + L_s) / 2
unimatch       self     argmax              -          0.95   2 x (colour, grey, blur,    (L_x + .25 L_s1 + .25 L_s2
                                                              cutmix) + feature dropout     + .5 L_fp) / 2
u2pl           ema      entropy-filter      adaptive   0      cutmix (half the area)      L_x + L_u + 0.1 L_c
pseudoseg      self     calibrated-fusion   -          0      colour, grey, cutout        L_x + L_u + L_cls + L_sgc
mean-teacher   ema      argmax (soft)       -          0      colour, grey, blur          L_x + L_n + L_u
supervised     -        -                   -          -      -                           L_x
=============  =======  ==================  =========  =====  ==========================  ===================

L_n is the cross-entropy of the unlabelled stream's own labels (``--unlabelled-labels``, with
``--unlabelled-weights``), added whenever the stream has labels; L_cls the tag BCE on labelled
images (``cls_weight``, 0.1 unless the method says otherwise).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from noisyseg.errors import ParameterError
from noisyseg.train.augment import StrongAug, parse_ops
from noisyseg.train.semi.losses import UNSUP_LOSSES
from noisyseg.train.supervised import TrainConfig

METHODS = ("fixmatch", "unimatch", "u2pl", "pseudoseg", "mean-teacher", "supervised")
TEACHERS = ("self", "ema")
LR_SCALINGS = ("none", "linear")


@dataclass
class SemiConfig(TrainConfig):
    """A semi-supervised run: ``TrainConfig``'s labelled stream plus an unlabelled one.

    ``batch_size`` (and ``unlabelled_batch_size``, default ``batch_size``) are per process;
    ``lr_scaling="linear"`` multiplies ``lr`` by the number of processes (the rate is stated for one
    process's batch and grows with the total batch). Fields left None take the method's preset.
    ``pseudo_params`` / ``weighting_params`` are the strategies' ``-p`` values; ``weighting="none"``
    switches a preset's weighting off.
    """

    unlabelled: str | None = None
    method: str = "fixmatch"
    unlabelled_labels: str | None = None
    unlabelled_weights: str | None = None
    unlabelled_batch_size: int | None = None
    pseudo_label: str | None = None
    pseudo_params: dict = field(default_factory=dict)
    weighting: str | None = None
    weighting_params: dict = field(default_factory=dict)
    teacher: str | None = None
    threshold: float | None = None
    strong_aug: str | None = None
    unsup_loss: str | None = None
    ema_decay: float | None = None
    warmup_epochs: int | None = None
    alpha_schedule: bool | None = None
    contrastive_weight: float | None = None
    val_split: str | None = None
    accumulate: int = 1
    lr_scaling: str = "none"


@dataclass(frozen=True)
class Plan:
    """The resolved loop parts; see the table in the module doc."""

    method: str
    teacher: str | None                 # "self", "ema" or None (supervised)
    pseudo_label: str | None
    pseudo_params: dict
    weighting: str | None
    weighting_params: dict
    threshold: float
    strong: StrongAug
    views: int                          # strong views per unlabelled image
    feature_dropout: float              # UniMatch's perturbation of the decoder's input features
    unsup_loss: str
    weight_x: float
    weight_views: tuple[float, ...]
    weight_fp: float
    weight_noisy: float
    contrastive_weight: float
    sgc: bool                           # PseudoSeg's SGC head and its loss
    cls_weight: float
    warmup_epochs: int                  # supervised-only epochs first (U2PL: 1)
    alpha_schedule: bool                # U2PL's α_t = α_0 (1 - epoch / epochs) on the strategies' ``alpha``
    ema_decay: float

    def to_json(self) -> dict:
        d = asdict(self)
        d["strong"] = {**asdict(self.strong), "ops": list(self.strong.ops)}
        return d


_COLOUR = ("colour", "grey", "blur")
_PRESETS: dict[str, dict] = {
    "fixmatch": dict(teacher="self", pseudo_label="argmax", threshold=0.95, strong=StrongAug((*_COLOUR, "cutmix")),
                     views=1, unsup_loss="ce", weight_x=0.5, weight_views=(0.5,)),
    "unimatch": dict(teacher="self", pseudo_label="argmax", threshold=0.95, strong=StrongAug((*_COLOUR, "cutmix")),
                     views=2, feature_dropout=0.5, unsup_loss="ce", weight_x=0.5, weight_views=(0.125, 0.125),
                     weight_fp=0.25),
    "u2pl": dict(teacher="ema", pseudo_label="entropy-filter", weighting="adaptive", threshold=0.0,
                 strong=StrongAug(("cutmix",), cutmix_area=(0.5, 0.5), cutmix_aspect=(0.5, 2.0)), views=1,
                 unsup_loss="ce", contrastive_weight=0.1, warmup_epochs=1, alpha_schedule=True),
    "pseudoseg": dict(teacher="self", pseudo_label="calibrated-fusion", threshold=0.0,
                      strong=StrongAug(("colour", "grey", "cutout")), views=1, unsup_loss="soft-ce", sgc=True,
                      cls_weight=1.0),
    "mean-teacher": dict(teacher="ema", pseudo_label="argmax", threshold=0.0, strong=StrongAug(_COLOUR), views=1,
                         unsup_loss="soft-ce"),
    "supervised": dict(teacher=None, pseudo_label=None, threshold=0.0, strong=StrongAug(()), views=0,
                       unsup_loss="ce", weight_views=()),
}
_BASE = dict(weighting=None, feature_dropout=0.0, weight_x=1.0, weight_views=(1.0,), weight_fp=0.0, weight_noisy=1.0,
             contrastive_weight=0.0, sgc=False, cls_weight=None, warmup_epochs=0, alpha_schedule=False,
             ema_decay=0.99)


def plan(cfg: SemiConfig) -> Plan:
    """The method's preset with ``cfg``'s overrides; ``ParameterError`` for an invalid choice."""
    if cfg.method not in METHODS:
        raise ParameterError(f"--method: expected one of {', '.join(METHODS)}, found '{cfg.method}'")
    if cfg.method != "supervised" and not cfg.unlabelled:
        raise ParameterError(f"--method {cfg.method}: expected an unlabelled split (--unlabelled SPLIT), found none")
    if cfg.lr_scaling not in LR_SCALINGS:
        raise ParameterError(f"--lr-scaling: expected {' or '.join(LR_SCALINGS)}, found '{cfg.lr_scaling}'")
    if cfg.accumulate < 1:
        raise ParameterError(f"--accumulate: expected an integer >= 1, found {cfg.accumulate}")
    if cfg.folds > 1:
        raise ParameterError("--folds: semi-supervised training trains one model; expected 1 fold, found "
                             f"{cfg.folds}")
    p = {**_BASE, **_PRESETS[cfg.method]}
    p["cls_weight"] = p["cls_weight"] if p["cls_weight"] is not None else cfg.cls_weight
    overrides = {"pseudo_label": cfg.pseudo_label, "teacher": cfg.teacher, "threshold": cfg.threshold,
                 "unsup_loss": cfg.unsup_loss, "ema_decay": cfg.ema_decay, "warmup_epochs": cfg.warmup_epochs,
                 "alpha_schedule": cfg.alpha_schedule, "contrastive_weight": cfg.contrastive_weight}
    p.update({k: v for k, v in overrides.items() if v is not None})
    if cfg.weighting is not None:
        p["weighting"] = None if cfg.weighting == "none" else cfg.weighting
    if cfg.strong_aug is not None:
        try:
            p["strong"] = replace(p["strong"], ops=parse_ops(cfg.strong_aug))
        except ValueError as e:
            raise ParameterError(f"--strong-aug: {e}") from None
    if cfg.method == "supervised":
        p["teacher"] = None
    elif p["teacher"] not in TEACHERS:
        raise ParameterError(f"--teacher: expected {' or '.join(TEACHERS)}, found '{p['teacher']}'")
    if p["unsup_loss"] not in UNSUP_LOSSES:
        raise ParameterError(f"--unsup-loss: expected one of {', '.join(UNSUP_LOSSES)}, found '{p['unsup_loss']}'")
    if not 0.0 <= p["threshold"] <= 1.0:
        raise ParameterError(f"--threshold: expected a confidence in [0, 1], found {p['threshold']}")
    if not 0.0 <= p["ema_decay"] < 1.0:
        raise ParameterError(f"--ema-decay: expected a value in [0, 1), found {p['ema_decay']}")
    if p["contrastive_weight"] > 0 and p["teacher"] != "ema":
        raise ParameterError("the contrastive term needs an EMA teacher (--teacher ema), found "
                             f"--teacher {p['teacher']}")
    if p["warmup_epochs"] >= cfg.epochs and cfg.method != "supervised":
        raise ParameterError(f"--epochs {cfg.epochs}: expected more than the {p['warmup_epochs']} supervised-only "
                             "warm-up epoch(s) of the method")
    return Plan(method=cfg.method, pseudo_params=dict(cfg.pseudo_params), weighting_params=dict(cfg.weighting_params),
                **p)
