"""Declarative configuration: one TOML file names every part and setting.

    [model]                       # parts, by registered name (notmiwae.models.registry.register)
    prior = "normal"
    decoder = "gaussian"
    missing = "selfmasking_known"
    latent_mask = false           # true: the masked not-MIWAE (a latent z_mask)
    latent_dim = 3                # optional: default D - 1
    hidden = 128

    [training]
    iterations = 20000
    batch_size = 16
    num_particles = 20            # K
    learning_rate = 0.001
    init = "torch"                # "glorot": as the paper's TensorFlow code; or
                                  # "glorot-missing": that for the missing model only
    seed = 0
    compile = "auto"              # true / false: the compiled training step always /
                                  # never; "auto": from 5,000 iterations on
    replicas = 1                  # R > 1: train seeds seed..seed+R-1 at once, an ensemble

    [imputation]
    num_samples = 1000            # L
    estimator = "mean"            # or "sample"
    ensemble = "pooled"           # R > 1: "pooled" weights, or "equal" per replica

    [parts]                       # users' parts: files or modules that call register()
    modules = ["my_parts.py"]     # (see notmiwae.inference.user_parts)

Every key is optional; ``model = "notmiwae:linear"`` under [model] may name a variant
instead of its parts. The result is the keyword arguments of ``NotMIWAEImputer``.
"""

from __future__ import annotations

from pathlib import Path

import tomllib

from notmiwae.models.registry import (
    DECODERS,
    MISSING_MODELS,
    PRIORS,
    load_installed_parts,
    variant_from_name,
)

from .user_parts import load_parts

SECTIONS = {
    "model": {"prior": "prior", "decoder": "decoder", "missing": "missing",
              "latent_mask": "latent_mask", "latent_dim": "latent_dim", "hidden": "hidden"},
    "training": {"iterations": "iterations", "batch_size": "batch_size",
                 "num_particles": "num_particles", "learning_rate": "learning_rate",
                 "init": "init", "seed": "random_state", "device": "device",
                 "compile": "compile", "replicas": "replicas"},
    "imputation": {"num_samples": "num_samples", "estimator": "estimator",
                   "ensemble": "ensemble"},
}


def parse_config(table: dict, source: str = "config") -> dict:
    """Imputer keyword arguments from a parsed TOML table; unknown keys are errors.
    The [parts] table is read by :func:`parts_of`."""
    params: dict = {}
    for section, body in table.items():
        if section == "parts":
            continue
        if section not in SECTIONS:
            raise ValueError(f"{source}: unknown section [{section}]; "
                             f"sections are {sorted(SECTIONS)}")
        for key, value in body.items():
            if section == "model" and key == "model":
                params.update(variant_from_name(value))
            elif key in SECTIONS[section]:
                _check_part(section, key, value, source)
                params[SECTIONS[section][key]] = value
            else:
                known = sorted(SECTIONS[section]) + (["model"] if section == "model" else [])
                raise ValueError(f"{source}: unknown key {key!r} in [{section}]; "
                                 f"keys are {known}")
    return params


def parts_of(table: dict, source: str = "config") -> list[str]:
    """The files and modules of users' parts named in the [parts] table."""
    body = table.get("parts", {})
    unknown = sorted(set(body) - {"modules"})
    if unknown:
        raise ValueError(f"{source}: unknown key {unknown[0]!r} in [parts]; keys are "
                         "['modules']")
    modules = body.get("modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ValueError(f"{source}: [parts] modules must be a list of file or module names")
    return modules


def _check_part(section: str, key: str, value: object, source: str) -> None:
    """A part named under [model] must be registered; the error lists those that are."""
    table = {"prior": PRIORS, "decoder": DECODERS, "missing": MISSING_MODELS}.get(key)
    if section != "model" or table is None:
        return
    if isinstance(value, str) and value not in table:
        load_installed_parts()
    if not isinstance(value, str) or value not in table:
        raise ValueError(f"{source}: unknown {key} {value!r} in [model]; known: "
                         f"{sorted(table)} (register your own with "
                         "notmiwae.models.registry.register, and name its file or module "
                         "with --parts or in a [parts] table)")


def read_toml(path: str | Path) -> dict:
    """The parsed TOML table of a configuration file, with clear errors."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None


def config_parts(path: str | Path) -> list[str]:
    """The users' parts a configuration file names, loaded (its [parts] table; file paths
    relative to the config file); returned as :func:`load_parts` finds them again."""
    folder = Path(path).parent
    return load_parts([str(folder / m) if m.endswith(".py") and not Path(m).is_absolute()
                       else m for m in parts_of(read_toml(path), str(path))])


def load_config(path: str | Path) -> dict:
    """Read a TOML configuration file into imputer keyword arguments, first loading the
    users' parts its [parts] table names."""
    config_parts(path)
    return parse_config(read_toml(path), str(path))


def dump_config(params: dict, parts: list[str] | None = None) -> str:
    """The TOML text of imputer parameters (the inverse of :func:`load_config`), and of
    the users' parts they need."""
    lines: list[str] = []
    for section, keys in SECTIONS.items():
        lines.append(f"[{section}]")
        for key, param in keys.items():
            value = params.get(param)
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    if parts:
        lines += ["[parts]", "modules = [" + ", ".join(map(_toml_value, parts)) + "]", ""]
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
