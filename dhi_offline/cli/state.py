"""Where the tool keeps its state, configuration and evidence.

Each location is chosen, in order, by: the command-line option (``--config DIR`` for
the trust store; ``--archive DIR`` per command), the environment variable
(``DHI_OFFLINE_CONFIG_DIR``, ``DHI_OFFLINE_DATA_DIR``, ``DHI_OFFLINE_STATE_DIR``), the
system-wide mode (``--system`` or ``DHI_OFFLINE_SYSTEM=1``: ``/etc/dhi-offline``,
``/var/lib/dhi-offline``, ``/var/lib/dhi-offline/exporter``), else the user's
platformdirs directories. ``dhi-offline doctor`` prints the choice and why.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "dhi-offline"
SYSTEM_CONFIG = Path("/etc/dhi-offline")
SYSTEM_DATA = Path("/var/lib/dhi-offline")
SYSTEM_STATE = SYSTEM_DATA / "exporter"
_run: dict[str, object] = {"config": None, "system": False}


def configure(*, config: str | None, system: bool) -> None:
    """The global options of this run (``--config``, ``--system``)."""
    _run["config"] = config
    _run["system"] = system


def system_mode() -> bool:
    """``--system`` or ``DHI_OFFLINE_SYSTEM=1``."""
    return bool(_run["system"]) or os.environ.get("DHI_OFFLINE_SYSTEM", "") in ("1", "true")


def _choose(var: str, system: Path, user: str) -> tuple[Path, str]:
    value = os.environ.get(var)
    if value:
        return Path(value), f"environment variable {var}"
    if system_mode():
        return system, "system-wide mode (--system or DHI_OFFLINE_SYSTEM=1)"
    return Path(user), "the user's platformdirs directory"


def config_dir_and_why() -> tuple[Path, str]:
    """The trust store directory, and what chose it."""
    option = _run["config"]
    if isinstance(option, str) and option:
        return Path(option), "--config"
    return _choose("DHI_OFFLINE_CONFIG_DIR", SYSTEM_CONFIG, platformdirs.user_config_dir(APP))


def data_dir_and_why() -> tuple[Path, str]:
    """The evidence archive directory (when ``--archive`` is not given), and why."""
    return _choose("DHI_OFFLINE_DATA_DIR", SYSTEM_DATA, platformdirs.user_data_dir(APP))


def state_dir_and_why() -> tuple[Path, str]:
    """The exporter state directory, and why."""
    return _choose("DHI_OFFLINE_STATE_DIR", SYSTEM_STATE, platformdirs.user_state_dir(APP))


def default_state_dir() -> Path:
    """Exporter state (sequence numbers, last checkpoints)."""
    return state_dir_and_why()[0]


def default_config_dir() -> Path:
    """The trust store."""
    return config_dir_and_why()[0]


def default_data_dir() -> Path:
    """The evidence archive."""
    return data_dir_and_why()[0]
