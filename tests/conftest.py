from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").rglob("*.spec"))


@pytest.fixture
def root() -> Path:
    return ROOT


PLAIN = (int, float, bool, str, type(None))


def assert_plain(value, where: str = "value") -> None:
    """Every value in `value` (walking dicts, lists and tuples) is exactly a builtin: a str
    subclass such as archdsl.ir.Name, or any other archdsl object, fails naming where it is."""
    if type(value) is dict:
        for key, item in value.items():
            assert type(key) is str, f"{where}: key {key!r} is a {type(key)}"
            assert_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for index, item in enumerate(value):
            assert_plain(item, f"{where}[{index}]")
    else:
        assert type(value) in PLAIN, f"{where} is a {type(value)}: {value!r}"


def assert_plain_fields(instance, where: str) -> None:
    """A dataclass's fields (a layer, a TrainConfig) are builtins, tuples of them at most."""
    import dataclasses
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        assert type(value) is not list and type(value) is not dict, (where, field.name, value)
        assert_plain(value, f"{where}.{field.name}")
