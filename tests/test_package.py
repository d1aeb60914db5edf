"""The installed package: one top-level name, importable beside a user's own modules."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "notmiwae", "models", "inference",
           "experiments")


def test_install_cannot_clash_with_users_modules(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ next to setup.cfg
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True)
    top = {p.name for p in target.iterdir()
           if not p.name.endswith(".dist-info") and p.name not in ("bin", "__pycache__")}
    assert top == {"notmiwae"}, f"the install puts {sorted(top)} at the top of site-packages"
    user = tmp_path / "user"
    user.mkdir()
    for name in ("models", "inference", "experiments"):  # a user's own, very common names
        (user / f"{name}.py").write_text(f"WHO = 'user {name}'\n")
    script = (
        "import models, inference, experiments\n"
        "from notmiwae import NotMIWAEImputer, ModelConfig\n"
        "from notmiwae.experiments.datasets import load_dataset\n"
        "import notmiwae.inference.cli\n"
        "assert models.WHO == 'user models' and experiments.WHO == 'user experiments'\n"
        "assert NotMIWAEImputer.__module__ == 'notmiwae.inference.imputer'\n"
        "x = load_dataset('banknote')\n"  # the bundled data travel with the package
        "print(notmiwae.inference.cli.__file__)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=user, capture_output=True,
                         text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(target))
