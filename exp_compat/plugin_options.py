"""A Hydra plugin's options as its config dataclass: the one reading that the sweepers and launchers share."""

from __future__ import annotations

from typing import Any, Mapping, Type, TypeVar, cast

T = TypeVar("T")


def typed_options(schema: Type[T], options: Mapping[str, Any], prefix: str) -> T:
    """A plugin's options (as Hydra passes them: values, nested DictConfigs) as its config dataclass.

    Read once, so that a mistyped key or a wrong type fails before the plugin does anything, not
    when its code path runs. Hydra has checked options that came through the ConfigStore; these
    checks are for options that did not (a ``_target_`` set by hand). Raises ``ValueError`` with one
    line naming ``<prefix>.<key>`` and what is wrong, for the plugin to raise as its own error.
    """
    from enum import Enum

    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    # Plain values first (choices by name): Hydra's plugin scan may import the config module again, so the
    # options' dataclasses and Enums can be other class objects than the schema's, which merge would refuse.
    plain = {
        key: OmegaConf.to_container(value, resolve=True, enum_to_str=True)
        if OmegaConf.is_config(value)
        else value.name
        if isinstance(value, Enum)
        else value
        for key, value in options.items()
    }
    try:
        return cast(T, OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), plain)))
    except OmegaConfBaseException as error:
        reason = str(getattr(error, "msg", None) or error).splitlines()[0]
        key = getattr(error, "full_key", None)
        raise ValueError(f"{prefix}.{key}: {reason}" if key else f"{prefix}: {reason}") from None
