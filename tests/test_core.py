"""The core modules every layer imports: constants, runtime, timing."""

import pytest

from noisyseg.constants import IGNORE_INDEX
from noisyseg.errors import NoisySegError, ParameterError
from noisyseg.runtime import check_seed, environment, select_device
from noisyseg.timing import Timer


def test_one_ignore_index_everywhere():
    from noisyseg.io.dataset import IGNORE_INDEX as from_dataset
    from noisyseg.strategies.correction.base import IGNORE as from_correction

    assert IGNORE_INDEX == 255 and from_dataset is IGNORE_INDEX and from_correction is IGNORE_INDEX


def test_runners_reexport_the_runtime():
    import noisyseg.pipeline.common as common
    import noisyseg.runtime as runtime
    from noisyseg.strategies.correction.base import StageTimer

    assert common.select_device is runtime.select_device and common.check_seed is runtime.check_seed
    assert common.environment is runtime.environment and common.Timer is Timer and StageTimer is Timer


def test_runtime_checks():
    assert select_device("cpu").type == "cpu"
    with pytest.raises(NoisySegError, match="expected auto, cpu or cuda"):
        select_device("tpu")
    assert check_seed(7) == 7
    with pytest.raises(ParameterError):
        check_seed(-1)
    assert set(environment()) == {"noisyseg", "torch", "python", "compiled_ops"}


def test_timer_add_accumulates_stages():
    timer = Timer()
    with timer("read"):
        pass
    before = timer.seconds["read"]
    timer.add({"read": 1.5, "crf": 2.0})
    timer.add({"crf": 0.5})
    assert timer.seconds == {"read": before + 1.5, "crf": 2.5}
