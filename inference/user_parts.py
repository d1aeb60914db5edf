"""Users' own parts for the command line and configs: a file, a module, or a package.

A part is registered by running ``notmiwae.models.registry.register(...)``, which lasts
for one Python process. The ``notmiwae`` command therefore loads the code that
registers the parts before it builds a model::

    notmiwae fit data.csv --parts my_parts.py --config model.toml --out run/
    notmiwae fit data.csv --parts mylab.notmiwae_parts --out run/    # an importable module

or, in the TOML configuration::

    [parts]
    modules = ["my_parts.py"]

A package that ships parts declares an entry point in the group ``notmiwae.parts``; the
registry loads those by itself when a name is unknown. A run folder records the files
and modules it was trained with, so that ``impute`` and ``check`` load them again.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType


def load_parts(specs: Iterable[str]) -> list[str]:
    """Import each file (``*.py`` or a path) or module name in ``specs``, running its
    ``register`` calls; returns how to find each again (absolute paths for files)."""
    return [_load(spec) for spec in specs]


def _load(spec: str) -> str:
    path = Path(spec)
    if spec.endswith(".py") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"parts file not found: {spec}")
        _import_file(path.resolve())
        return str(path.resolve())
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as err:
        if err.name and spec.startswith(err.name):
            raise ModuleNotFoundError(f"parts module {spec!r} not found: give a .py file or "
                                      "an importable module (is it installed?)") from None
        raise
    return spec


def _import_file(path: Path) -> ModuleType:
    """Import a Python file once per process, under a name derived from its path."""
    name = "notmiwae_parts_" + "".join(c if c.isalnum() else "_" for c in str(path))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def check_recorded(specs: Iterable[str], run: str | Path) -> list[str]:
    """Load the parts a run folder recorded; say exactly what to provide if one is gone."""
    try:
        return load_parts(specs)
    except (FileNotFoundError, ModuleNotFoundError) as err:
        raise FileNotFoundError(f"{run} was trained with parts that cannot be loaded ({err}); "
                                "give the file or module again with --parts") from None
