"""pysync.record behaves as the dataclasses it replaced: same constructor
(positional and keyword), defaults, fresh factory values, equality,
hashing and immutability of frozen records, and replace()."""
import pytest

from pysync.record import field, record, replace, values


@record
class Settings:
    name: str
    level: int = 1
    items: list = field(default_factory=list)
    hook: object = field(default=None, compare=False, repr=False)


@record(frozen=True)
class Point:
    x: int
    y: int = 0

    def __post_init__(self):
        if self.x < 0:
            raise ValueError("negative")


def test_constructor_positional_keyword_and_defaults():
    s = Settings("a", 2)
    assert (s.name, s.level, s.items, s.hook) == ("a", 2, [], None)
    assert Settings(name="b").level == 1
    assert Settings("a").items is not Settings("a").items
    assert Settings("a", items=[1]).items == [1]
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        Settings("a", nope=1)
    with pytest.raises(TypeError, match="multiple values"):
        Settings("a", name="b")
    with pytest.raises(TypeError, match="missing 1 required"):
        Settings()
    with pytest.raises(TypeError, match="positional arguments"):
        Settings("a", 1, [], None, 5)


def test_eq_repr_and_fields_left_out():
    assert Settings("a", hook=1) == Settings("a", hook=2)
    assert Settings("a") != Settings("a", 2)
    assert Settings("a") != ("a", 1, [], None)
    assert repr(Settings("a", 3)) == "Settings(name='a', level=3, items=[])"
    assert Settings.__hash__ is None
    assert values(Settings("a")) == {"name": "a", "level": 1, "items": [], "hook": None}


def test_frozen_hash_post_init_and_replace():
    p = Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 5
    with pytest.raises(AttributeError):
        del p.y
    assert hash(p) == hash(Point(1, 2)) and {p: 1}[Point(1, 2)] == 1
    q = replace(p, y=7)
    assert (q.x, q.y, p.y) == (1, 7, 2)
    with pytest.raises(ValueError):
        Point(-1)
    with pytest.raises(ValueError):
        replace(p, x=-3)


def test_non_default_after_default_is_refused():
    with pytest.raises(TypeError, match="non-default argument"):
        @record
        class Bad:
            a: int = 0
            b: int
