import pytest

from noisyseg.errors import ParameterError
from noisyseg.params import Param, parse_assignments
from noisyseg.strategies.spec import StrategySpec


def _spec():
    return StrategySpec(
        kind="detection", name="toy", summary="toy", factory=lambda **kw: kw,
        params=(Param("alpha", float, 0.2, min=0.0, max=1.0), Param("k", int, 3, min=1),
                Param("mode", str, "a", choices=("a", "b")), Param("theta", float, 0.1, special=("auto",)),
                Param("flag", bool, False)))


def test_defaults_and_conversion():
    assert _spec().resolve({}) == {"alpha": 0.2, "k": 3, "mode": "a", "theta": 0.1, "flag": False}
    got = _spec().resolve({"alpha": "0.5", "k": "7", "mode": "b", "theta": "auto", "flag": "yes"})
    assert got == {"alpha": 0.5, "k": 7, "mode": "b", "theta": "auto", "flag": True}
    assert _spec().build({"k": "2"})["k"] == 2


@pytest.mark.parametrize("given, fragment", [
    ({"alpha": "1.5"}, "in [0.0, 1.0], found 1.5"),
    ({"alpha": "abc"}, "expected float"),
    ({"k": "0"}, "found 0"),
    ({"k": "2.5"}, "expected int"),
    ({"mode": "c"}, "one of a, b"),
    ({"flag": "maybe"}, "expected bool"),
    ({"alpha": "nan"}, "NaN"),
    ({"nope": "1"}, "has no parameter 'nope'; its parameters: alpha, k, mode, theta, flag"),
])
def test_invalid_parameters_name_the_problem(given, fragment):
    with pytest.raises(ParameterError, match="toy") as info:
        _spec().resolve(given)
    assert fragment in str(info.value)


def test_parse_assignments():
    assert parse_assignments(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ParameterError, match="key=value"):
        parse_assignments(["novalue"])
    with pytest.raises(ParameterError, match="empty key"):
        parse_assignments(["=3"])


def test_unknown_kind_rejected():
    with pytest.raises(ValueError, match="kind"):
        StrategySpec(kind="magic", name="x", summary="", factory=dict)


def test_params_keep_their_old_import_path():
    """Param & co. moved to noisyseg.params; plugins importing them from strategies.spec still work."""
    import noisyseg.params as params
    import noisyseg.strategies.spec as spec

    assert spec.Param is params.Param
    assert spec.resolve_params is params.resolve_params
    assert spec.parse_assignments is params.parse_assignments
