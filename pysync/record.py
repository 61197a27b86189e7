"""Record classes for settings and results, without ``dataclasses``.

``dataclasses`` compiles each class's ``__init__``, ``__repr__`` and
``__eq__`` from generated source when the module is imported (1-4 ms for
each of our wide settings classes), and importing it pulls in ``inspect``
(~6 ms together).  Every pysync process, the remote server included, paid
that before its first byte.  :func:`record` reads the same class body
(annotated fields, plain defaults, ``field(default_factory=...)``) and
attaches shared methods that loop over the field names: nothing is compiled.

The methods are slower per call than generated ones, so this is for objects
made a few times per run (options, session settings, statistics); a record
made per file or per block gets a hand-written ``__init__`` and
``__slots__`` instead (see ``protocol.sums.SumHead``).
"""

from __future__ import annotations

__all__ = ["record", "field", "replace", "values"]

_MISSING = object()


class field:
    """A field's default when a plain value will not do: a factory for a
    fresh mutable value, or a field left out of equality and ``repr``."""

    __slots__ = ("default", "default_factory", "compare", "repr")

    def __init__(self, *, default=_MISSING, default_factory=None, compare=True, repr=True):
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr


class _Spec:
    __slots__ = ("names", "known", "required", "defaults", "factories", "compared", "shown", "post_init")


def _init(self, *args, **kw):
    spec = self._record_spec
    cls = type(self)
    if len(args) > len(spec.names):
        raise TypeError(f"{cls.__name__}.__init__() takes {len(spec.names) + 1} positional arguments "
                        f"but {len(args) + 1} were given")
    values = dict(spec.defaults)
    values.update(zip(spec.names, args))
    for name, value in kw.items():
        if name not in spec.known:
            raise TypeError(f"{cls.__name__}.__init__() got an unexpected keyword argument '{name}'")
        if name in spec.names[:len(args)]:
            raise TypeError(f"{cls.__name__}.__init__() got multiple values for argument '{name}'")
        values[name] = value
    for name, factory in spec.factories:
        if name not in values:
            values[name] = factory()
    missing = [n for n in spec.required if n not in values]
    if missing:
        raise TypeError(f"{cls.__name__}.__init__() missing {len(missing)} required argument(s): "
                        + ", ".join(repr(n) for n in missing))
    self.__dict__.update(values)
    if spec.post_init:
        self.__post_init__()


def _repr(self):
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._record_spec.shown)
    return f"{type(self).__qualname__}({shown})"


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = self._record_spec.compared
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self):
    return hash(tuple(getattr(self, n) for n in self._record_spec.compared))


def _frozen_setattr(self, name, value):
    raise AttributeError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name):
    raise AttributeError(f"cannot delete field {name!r}")


def record(cls=None, *, frozen=False):
    """Make ``cls`` a record: ``__init__`` taking the annotated fields in
    order (positionally or by name), ``__repr__``, ``__eq__`` by field, and
    for ``frozen`` records no assignment and a ``__hash__``.  A
    ``__post_init__`` method runs after ``__init__``, as with dataclasses."""
    def wrap(cls):
        spec = _Spec()
        spec.names, spec.required, spec.defaults, spec.factories = (), (), {}, ()
        compared, shown = [], []
        for name in cls.__dict__.get("__annotations__", {}):
            value = cls.__dict__.get(name, _MISSING)
            spec.names += (name,)
            opt = value if isinstance(value, field) else None
            if opt is not None:
                value = opt.default
            if opt is not None and opt.default_factory is not None:
                spec.factories += ((name, opt.default_factory),)
                delattr(cls, name)
            elif value is _MISSING:
                if spec.defaults or spec.factories:
                    raise TypeError(f"non-default argument {name!r} follows default argument")
                spec.required += (name,)
            else:
                spec.defaults[name] = value
                setattr(cls, name, value)
            if opt is None or opt.compare:
                compared.append(name)
            if opt is None or opt.repr:
                shown.append(name)
        spec.compared, spec.shown = tuple(compared), tuple(shown)
        spec.known = frozenset(spec.names)
        spec.post_init = hasattr(cls, "__post_init__")
        cls._record_spec = spec
        cls.__init__ = _init
        cls.__repr__ = _repr
        cls.__eq__ = _eq
        if frozen:
            cls.__setattr__ = _frozen_setattr
            cls.__delattr__ = _frozen_delattr
            cls.__hash__ = _hash
        else:
            cls.__hash__ = None
        return cls
    return wrap if cls is None else wrap(cls)


def replace(obj, **changes):
    """A new record like ``obj`` with ``changes`` applied (``__post_init__``
    runs again), as ``dataclasses.replace``."""
    values = {n: getattr(obj, n) for n in obj._record_spec.names}
    values.update(changes)
    return type(obj)(**values)


def values(obj) -> dict:
    """The fields of ``obj`` by name, in declaration order."""
    return {n: getattr(obj, n) for n in obj._record_spec.names}
