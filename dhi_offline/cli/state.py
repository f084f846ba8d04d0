"""Where the tool keeps its state, configuration and evidence (platformdirs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "dhi-offline"


def _override(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value) if value else None


def default_state_dir() -> Path:
    """Exporter state (sequence numbers, last checkpoints); ``DHI_OFFLINE_STATE_DIR`` overrides."""
    return _override("DHI_OFFLINE_STATE_DIR") or Path(platformdirs.user_state_dir(APP))


def default_config_dir() -> Path:
    """The trust store; ``DHI_OFFLINE_CONFIG_DIR`` overrides."""
    return _override("DHI_OFFLINE_CONFIG_DIR") or Path(platformdirs.user_config_dir(APP))


def default_data_dir() -> Path:
    """The evidence archive; ``DHI_OFFLINE_DATA_DIR`` overrides."""
    return _override("DHI_OFFLINE_DATA_DIR") or Path(platformdirs.user_data_dir(APP))
