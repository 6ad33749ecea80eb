"""The skeleton the strategy commands share: ``detect``, ``correct``, ``pseudo-label`` and ``weight``.

Each runs one registered strategy over one split, and :class:`StrategyRun` is how:

1. build the strategy from its spec, the user's parameters validated (:func:`build_strategy`);
2. check the inputs the strategy declares against what was given (:meth:`StrategyRun.check`): the
   strategy object's ``needs`` must be given, its ``accepts`` are read when given. Both are plain
   class (or instance) attributes, so a third-party strategy declares its inputs like a built-in;
3. read every image header before anything is written, then open the output directory
   (:meth:`StrategyRun.start`, an ``OutputDir``: started, resumed or refused);
4. iterate the images whose output files are not all finished yet in batches of one image size (:meth:`StrategyRun.todo`,
   :meth:`StrategyRun.batches`, :meth:`StrategyRun.tracked`), a strategy's ``ValueError`` (inputs it
   refuses) becoming a ``ParameterError`` that names it (:meth:`StrategyRun.strategy_errors`);
5. count the images an earlier run finished (:meth:`StrategyRun.finished`) and write the report
   (:meth:`StrategyRun.report`).

What each command loads into its batches, does with the strategy's answer and counts into its
report stays in its own module.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from noisyseg.errors import ParameterError
from noisyseg.io import Dataset
from noisyseg.pipeline.common import OutputDir, Timer, Track, group_by_size, no_track, select_device, write_report

T = TypeVar("T")


def build_strategy(kind: str, name: str, params: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """The strategy object of ``kind`` and ``name`` built from ``params``, and the validated
    parameters (declared defaults overridden by ``params``) that the report records: what
    ``StrategySpec.build`` does, keeping the parameters it resolves."""
    from noisyseg.plugins import get_strategy

    spec = get_strategy(kind, name)
    resolved = spec.resolve(params)
    return spec.factory(**resolved), resolved


def declared(strategy: Any, attribute: str) -> frozenset[str]:
    """The input names a strategy object declares in ``attribute`` (``needs`` or ``accepts``);
    none when it has no such attribute."""
    return frozenset(getattr(strategy, attribute, None) or ())


@dataclass(frozen=True)
class Input:
    """An input a command can hand its strategy.

    Args:
        name: as strategies declare it (``"features"``).
        flag: how the user gives it, as errors name it (``"--features DIR"``).
        given: whether it was given (a path was passed; True for what is always at hand, such as
            the dataset's images).
        always: the command hands it over whenever it is given, declared or not (the labels
            ``weight`` scores against, the maps ``pseudo-label`` is given).
        readable: False for an input this command cannot read at all: a strategy that needs it
            is refused.
        when: words the refusal puts before "needs", e.g. ``"with these parameters"`` for an input
            a strategy needs only with some parameters.
    """

    name: str
    flag: str
    given: bool
    always: bool = False
    readable: bool = True
    when: str = ""


class StrategyRun:
    """One strategy of ``kind`` over ``split`` of ``dataset`` for ``command`` (see the module's docstring).

    Attributes: ``ds`` (the Dataset), ``strategy`` (the built object), ``params`` (its validated
    parameters), ``timer`` (the report's timings); after :meth:`start`: ``ids``, ``sizes``,
    ``device``, ``output`` and ``run_params``.
    """

    def __init__(self, command: str, kind: str, dataset: str | Path, split: str, strategy: str,
                 params: dict[str, Any] | None, out: str | Path, batch_size: int = 8, force: bool = False,
                 track: Track = no_track):
        self.command, self.split, self.name = command, split, strategy
        self.out = Path(out)
        self.batch_size, self.force, self.track = batch_size, force, track
        self.ds = Dataset(dataset)
        self.strategy, self.params = build_strategy(kind, strategy, params)
        self.timer = Timer()
        self._todo: list[str] = []

    @property
    def needs(self) -> frozenset[str]:
        """Inputs the strategy requires."""
        return declared(self.strategy, "needs")

    @property
    def accepts(self) -> frozenset[str]:
        """Inputs the strategy reads when they are given (``optional``: the name the weight
        runner once read, still honoured)."""
        return declared(self.strategy, "accepts") | declared(self.strategy, "optional")

    def check(self, inputs: Iterable[Input], also_needs: Iterable[str] = ()) -> set[str]:
        """Raises ``ParameterError`` for an input the strategy (or ``also_needs``, e.g. a
        post-step's) needs that was not given or that this command cannot read, checked in the
        order of ``inputs``; returns the names of the inputs to load: those given that the
        strategy needs or accepts, and those the command hands over whenever given. Names this
        command does not know are left to the strategy."""
        inputs = list(inputs)
        needs = self.needs | set(also_needs)
        for i in inputs:
            if i.name in needs and not i.readable:
                raise ParameterError(f"strategy '{self.name}' needs {i.flag}, which '{self.command}' does not read")
            if i.name in needs and not i.given:
                when = f" {i.when}" if i.when else ""
                raise ParameterError(f"strategy '{self.name}'{when} needs {i.flag}, found none given")
        wanted = needs | self.accepts
        return {i.name for i in inputs if i.given and i.readable and (i.always or i.name in wanted)}

    def start(self, ids: list[str], run_params: dict[str, Any], device: str) -> OutputDir:
        """Selects the device, reads every image header of ``ids`` (before anything is written),
        then opens the output directory for ``run_params`` (the split aside: one directory may hold
        several splits) and adds the split to them. Use it as a context manager."""
        self.ids = ids
        self.device = select_device(device)
        self.sizes = {i: self.ds.image_size(i) for i in ids}
        self.output = OutputDir(self.out, self.command, run_params, self.force)
        run_params["split"] = self.split
        self.run_params = run_params
        return self.output

    def todo(self, files: Callable[[str], list[Path]]) -> list[str]:
        """The ids to do: those of which some output file (``files(id)``) this run, or the run it
        resumes, has not recorded as finished; the others are skipped."""
        self._todo = [i for i in self.ids if not all(self.output.done(f) for f in files(i))]
        return self._todo

    def finished(self) -> list[str]:
        """The ids an earlier run finished, sorted: they still count in the report."""
        return sorted(set(self.ids) - set(self._todo))

    def batches(self, load: Callable[[list[str], tuple[int, int]], T]) -> Iterator[T]:
        """``load(ids, (H, W))`` for each batch of the ids to do whose images share a size."""
        for chunk in group_by_size(self._todo, self.sizes, self.batch_size):
            yield load(chunk, self.sizes[chunk[0]])

    def tracked(self, batches: Iterable[T]) -> Iterable[T]:
        """``batches`` through the progress callback, as ``<command> <split> (<strategy>)``."""
        return self.track(batches, -(-len(self._todo) // self.batch_size), f"{self.command} {self.split} ({self.name})")

    @contextmanager
    def strategy_errors(self):
        """Turns a ``ValueError`` of the strategy (inputs it refuses: shapes, missing tensors) into
        a ``ParameterError`` naming it."""
        try:
            yield
        except ValueError as e:
            raise ParameterError(f"strategy '{self.name}': {e}") from None

    def report(self, figures: dict[str, Any], head: dict[str, Any] | None = None) -> dict[str, Any]:
        """Writes and returns the report: the command, its parameters and split, ``head``, the
        image counts, then the command's ``figures``."""
        report = {"command": self.command, **self.run_params, **(head or {}), "images": len(self.ids),
                  "skipped": len(self.ids) - len(self._todo), **figures}
        return write_report(self.out, report)
