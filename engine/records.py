"""A faster ``__init__`` for the frozen dataclasses the hot path builds (states, runs, decisions).

A frozen dataclass stores each field through ``object.__setattr__`` (it must get past its own
``__setattr__``, which refuses): a global lookup, an attribute lookup and a call per field. The
processor builds several such records per event (a customer's state has 18 fields), and their
construction was the largest single cost of a campaign run (py-spy: ~16% of the processor).

``quick_init`` replaces the class's generated ``__init__`` with one of the same signature that
stores each field through its slot's descriptor, looked up once: about 2.4x faster for an
18-field state. The instances are the same: equal, hashable, still frozen. Like ``dataclasses``
itself, it writes the ``__init__`` as source built from the class's own field names (never from
any input) and compiles it once, when the class is defined.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

_T = TypeVar("_T")

# The default of a parameter whose field has a default factory: the factory is called when the
# caller passed nothing.
_FACTORY = object()


def quick_init(cls: type[_T]) -> type[_T]:
    """Give the frozen, slotted dataclass ``cls`` a faster ``__init__`` (a class decorator)."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    if "__slots__" not in cls.__dict__ or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"quick_init needs a frozen dataclass with slots, not {cls.__name__}")
    if hasattr(cls, "__post_init__") or any(field.kw_only for field in params):
        raise TypeError(f"quick_init does not support __post_init__ or keyword-only fields ({cls.__name__})")
    names: dict[str, Any] = {"_FACTORY": _FACTORY}
    signature: list[str] = []
    body: list[str] = []
    for number, field in enumerate(params):
        store = f"__store{number}"
        names[store] = cls.__dict__[field.name].__set__  # the slot's member descriptor
        has_factory = field.default_factory is not dataclasses.MISSING
        if has_factory:
            names[f"__factory{number}"] = field.default_factory
        if not field.init:
            if has_factory:
                body.append(f"{store}(self, __factory{number}())")
            elif field.default is not dataclasses.MISSING:
                names[f"__default{number}"] = field.default
                body.append(f"{store}(self, __default{number})")
            continue
        if has_factory:
            signature.append(f"{field.name}=_FACTORY")
            value = f"__factory{number}() if {field.name} is _FACTORY else {field.name}"
            body.append(f"{store}(self, {value})")
        else:
            if field.default is not dataclasses.MISSING:
                names[f"__default{number}"] = field.default
                signature.append(f"{field.name}=__default{number}")
            else:
                signature.append(field.name)
            body.append(f"{store}(self, {field.name})")
    source = f"def __init__(self, {', '.join(signature)}):\n" + "".join(f"    {line}\n" for line in body)
    source += "    return None\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<quick_init {cls.__qualname__}>", "exec"), names, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__  # type: ignore[misc]
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
