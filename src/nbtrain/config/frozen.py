"""Read-only dicts and lists for the JSON values inside a frozen config.

Pydantic's ``frozen=True`` stops ``cfg.env_kwargs = ...`` but not
``cfg.env_kwargs["is_slippery"] = True``: that changed what the workers ran while the
digest and the stored config still named the old value. The containers here are real
``dict`` and ``list`` subclasses (so ``json``, msgspec, pydantic and ``gym.make(**kw)``
take them as they are) whose changing methods raise :class:`FrozenConfigError`, naming the
field and the way to change a config: a validated copy.
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["FrozenConfigError", "FrozenDict", "FrozenList", "freeze", "freeze_dict", "freeze_list"]


class FrozenConfigError(TypeError):
    """A value inside a validated config was changed in place."""


def _refuse(where: str) -> NoReturn:
    field = where.split("[", 1)[0]
    if field.startswith("WorkerSpec."):
        how = "make a new WorkerSpec with the values you want"
    else:
        how = f"make a changed copy with cfg.model_copy(update={{{field!r}: ...}})"
    raise FrozenConfigError(
        f"{where} belongs to a validated config and cannot be changed in place (its digest "
        f"and what workers run would disagree); {how}"
    )


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes (see the module's docstring)."""

    __slots__ = ("_where",)

    def __init__(self, items: dict[str, Any], where: str) -> None:
        super().__init__(items)
        self._where = where

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy without __setitem__
        return (type(self), (dict(self), self._where))

    def _changed(self, *args: object, **kwargs: object) -> NoReturn:
        _refuse(self._where)

    __setitem__ = __delitem__ = __ior__ = _changed
    clear = pop = popitem = setdefault = update = _changed


class FrozenList(list[Any]):
    """A list that refuses changes (see the module's docstring)."""

    __slots__ = ("_where",)

    def __init__(self, items: list[Any], where: str) -> None:
        super().__init__(items)
        self._where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self), self._where))

    def _changed(self, *args: object, **kwargs: object) -> NoReturn:
        _refuse(self._where)

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _changed
    append = extend = insert = pop = remove = clear = sort = reverse = _changed


def freeze(value: Any, where: str) -> Any:
    """``value`` with every dict and list in it (at any depth) made read-only; ``where``
    names the field in errors (``env_kwargs``, then ``env_kwargs['desc']``...)."""
    if isinstance(value, dict):
        return freeze_dict(value, where)
    if isinstance(value, list):
        return freeze_list(value, where)
    return value


def freeze_dict(value: dict[str, Any], where: str) -> dict[str, Any]:
    return FrozenDict({k: freeze(v, f"{where}[{k!r}]") for k, v in value.items()}, where)


def freeze_list(value: list[Any], where: str) -> list[Any]:
    return FrozenList([freeze(v, f"{where}[{i}]") for i, v in enumerate(value)], where)
