"""scripts/install.sh installs bubblewrap where it can, else prints the command; it never fails the install.

The script's ``install_bubblewrap`` function runs here against fake ``id``, ``apt-get`` and ``bwrap``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install.sh"


def _function() -> str:
    lines = SCRIPT.read_text().splitlines()
    start = lines.index("install_bubblewrap() {")
    end = lines.index("}", start)
    return "\n".join(lines[start : end + 1])


def _fake(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def _run(tmp_path: Path, *, uid: int, apt: str | None, has_bwrap: bool = False) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    _fake(bin_dir, "id", f"echo {uid}")
    if has_bwrap:
        _fake(bin_dir, "bwrap", "exit 0")
    if apt == "works":  # installs a bwrap, as the Debian package would
        _fake(bin_dir, "apt-get", f'echo "$*" >> {log}\ncase "$1" in install) printf "#!/bin/sh\\n" > {bin_dir}/bwrap; '
                                  f"/bin/chmod +x {bin_dir}/bwrap;; esac")  # fmt: skip
    elif apt == "fails":
        _fake(bin_dir, "apt-get", f'echo "$*" >> {log}\necho "E: Unable to locate package bubblewrap" >&2\nexit 100')
    script = f"set -euo pipefail\n{_function()}\ninstall_bubblewrap || true\necho INSTALL-GOES-ON\n"
    done = subprocess.run([shutil.which("bash") or "/bin/bash", "-c", script], capture_output=True, text=True, timeout=30, check=False,
                          env={"PATH": str(bin_dir)})  # fmt: skip
    return done, log.read_text().splitlines() if log.exists() else []


def test_present_bwrap_is_left_alone(tmp_path: Path) -> None:
    done, apt = _run(tmp_path, uid=0, apt="works", has_bwrap=True)
    assert done.returncode == 0 and apt == [] and done.stderr == ""
    assert done.stdout.strip() == "INSTALL-GOES-ON"


def test_root_installs_the_debian_package(tmp_path: Path) -> None:
    done, apt = _run(tmp_path, uid=0, apt="works")
    assert done.returncode == 0 and "INSTALL-GOES-ON" in done.stdout
    assert [a.split()[0] for a in apt] == ["update", "install"]
    assert "-y" in apt[1].split() and apt[1].split()[-1] == "bubblewrap"
    assert (tmp_path / "bin" / "bwrap").exists() and "warning" not in done.stderr


@pytest.mark.parametrize(("uid", "apt", "command"), [
    (0, "fails", "  apt-get install -y bubblewrap"),
    (0, None, "  apt-get install -y bubblewrap"),  # root without apt-get
    (1000, "works", "  sudo apt-get install -y bubblewrap"),  # not root: never tries
])  # fmt: skip
def test_when_it_cannot_it_prints_the_command_and_goes_on(tmp_path: Path, uid: int, apt: str | None, command: str) -> None:
    done, calls = _run(tmp_path, uid=uid, apt=apt)
    assert done.returncode == 0 and "INSTALL-GOES-ON" in done.stdout
    assert "bubblewrap is missing" in done.stderr
    assert any(line.startswith(command) for line in done.stderr.splitlines()), done.stderr
    assert calls == ([] if uid else (["update -qq"] if apt == "fails" else []))


def test_install_script_parses() -> None:
    assert subprocess.run([shutil.which("bash") or "/bin/bash", "-n", str(SCRIPT)], capture_output=True, check=False).returncode == 0
