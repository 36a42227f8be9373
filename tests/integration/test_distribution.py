"""The distribution: ``python -m build`` makes an sdist and a wheel that install and run.

The wheel is built from the sdist (``build``'s default), so a file the sdist left out would
be missing from the installed command too. It is installed into a fresh virtualenv without
network: its dependencies come from the dev virtualenv through a ``.pth`` file, which puts
that site-packages on ``sys.path`` without processing its own ``.pth`` files (the editable
install of fwwatch among them), so the fwwatch imported is the wheel's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from fwwatch import __version__
from fwwatch.simulator import RunningSimulator
from tests.integration.conftest import MakeSimulator, point_cli_at

#: The module-scoped scenarios below run once: the suite's workers (pytest -n) keep this
#: module's tests on one of them.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("the built package")]

REPO = Path(__file__).resolve().parents[2]
#: What an sdist made in a working checkout must not sweep in.
JUNK = (".venv", ".git/", "__pycache__", ".pyc", "_cache", ".hypothesis", ".sqlite3", ".env")


def run(command: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
    )
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def own_environment() -> dict[str, str]:
    """This process's environment, less what would import fwwatch from the source tree."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel, built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)])
    (sdist,) = out.glob("fwwatch-*.tar.gz")
    (wheel,) = out.glob("fwwatch-*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def fresh_venv(dists: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with the wheel installed, offline; its ``bin`` directory."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    offline = ["--no-deps", "--no-index", "--no-cache-dir"]
    run([*pip, "install", "-q", *offline, str(dists[1])], env=own_environment())
    site_packages = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        env=own_environment(),
    ).strip()
    dev_paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site_packages) / "fwwatch-dev-dependencies.pth").write_text(
        "".join(f"{path}\n" for path in dev_paths), encoding="utf-8"
    )
    return venv / "bin"


def test_the_sdist_holds_the_license_the_readme_and_the_package_only(
    dists: tuple[Path, Path],
) -> None:
    with tarfile.open(dists[0]) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    for wanted in ("LICENSE", "README.md", "pyproject.toml", "shared/fwwatch/__init__.py"):
        assert wanted in names
    assert "shared/fwwatch/py.typed" in names
    assert "shared/fwwatch/simulator/server.py" in names
    assert not [name for name in names if name.startswith(("tests/", "bench/", "functions/"))]
    assert not [name for name in names if any(junk in name for junk in JUNK)]


def test_the_wheel_carries_the_license_and_the_command(dists: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(dists[1]) as wheel:
        names = wheel.namelist()
        info = f"fwwatch-{__version__}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert f"{info}/licenses/LICENSE" in names
    assert "License-Expression: MIT" in metadata
    assert "fwwatch = fwwatch.cli:main" in entry_points
    assert not [name for name in names if name.startswith("tests/") or "__pycache__" in name]


def test_the_installed_command_is_the_wheels(fresh_venv: Path) -> None:
    where = run(
        [str(fresh_venv / "python"), "-c", "import fwwatch; print(fwwatch.__file__)"],
        env=own_environment(),
    )
    assert Path(where.strip()).is_relative_to(fresh_venv.parent)
    version = run([str(fresh_venv / "fwwatch"), "--version"], env=own_environment())
    assert version.strip() == f"fwwatch {__version__}"


def test_the_installed_command_checks_devices_against_the_simulator(
    fresh_venv: Path,
    make_simulator: MakeSimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    simulator: RunningSimulator = make_simulator()
    point_cli_at(simulator, monkeypatch, tmp_path)
    healthy = [d.device_id for d in simulator.cloud.fleet.devices if d.error is None][:3]
    out = run([str(fresh_venv / "fwwatch"), "check", *healthy], env=own_environment(), cwd=tmp_path)
    assert out.splitlines()[0].split()[:3] == ["DEVICE", "CHANNEL", "INSTALLED"]
    assert "Checked 3 of 3 devices" in out
    assert simulator.cloud.stats.snapshot()["requests"] > 0
