"""The user's own catalogue: models added with `autotags models add` or made by
`autotags models quantize`, kept as a TOML file of the same form as the packaged one.

``$AUTOTAGS_HOME/models.toml`` if that is set, else ``$XDG_CONFIG_HOME/autotags/models.toml``
(``~/.config/autotags/models.toml``). Plain data: reading it needs no engine.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from .. import locations
from ..errors import AutotagsError

# Names become folder names: no separators, no dots leading anywhere.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class UserCatalogueError(AutotagsError, ValueError):
    """The user's catalogue file is not TOML, or not a table of models."""


def user_catalogue_path() -> Path:
    if os.environ.get("AUTOTAGS_HOME"):
        return locations.cache_home() / "models.toml"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "autotags" / "models.toml"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def read_user_entries() -> dict[str, dict[str, Any]]:
    path = user_catalogue_path()
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as handle:
            models = tomllib.load(handle).get("models", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserCatalogueError(f"{path}: cannot read it ({error})") from None
    if not isinstance(models, dict):
        raise UserCatalogueError(f"{path}: cannot read it ([models] must be a table of "
                                 "models)")
    return dict(models)


def write_user_entries(entries: dict[str, dict[str, Any]]) -> None:
    path = user_catalogue_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Models added with `autotags models add`. Edit with care.", ""]
    for name, entry in sorted(entries.items()):
        lines.append(f"[models.{json.dumps(name)}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in entry.items())
        lines.append("")
    staged = path.with_suffix(".toml.new")
    staged.write_text("\n".join(lines), encoding="utf-8")
    staged.replace(path)
