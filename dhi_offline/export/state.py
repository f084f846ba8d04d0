"""Exporter state on the connected machine: sequences and checkpoints, one lock.

``STATE_DIR`` holds ``sequences.json`` (``bundle.sequence_state``: the sequence of each
exporter key) and ``checkpoints.json`` (the newest checkpoint packed per log, hex log id
-> signed note, for the next export's consistency proofs). Every read-modify-write of
either runs under the one state lock (``sequence_state.locked_state``) and writes a
temp file then ``os.replace``: two exports at once never reuse a sequence nor lose a
checkpoint, and a crash leaves the old or the new file.
"""

from __future__ import annotations

import json
from pathlib import Path

from dhi_offline.bundle.sequence_state import locked_state, next_sequence, write_atomic
from dhi_offline.errors import InputError
from dhi_offline.tlog.checkpoint import parse_checkpoint

__all__ = ["CHECKPOINT_STATE", "load_checkpoints", "next_sequence", "save_checkpoints"]

CHECKPOINT_STATE = "checkpoints.json"


def load_checkpoints(state_dir: Path) -> dict[str, str]:
    """The newest checkpoint this exporter packed per log (hex log id -> note).

    Raises:
        InputError: the state file is unreadable or malformed.
    """
    try:
        doc = json.loads((state_dir / CHECKPOINT_STATE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as e:
        raise InputError(f"exporter state {state_dir / CHECKPOINT_STATE} is unreadable: {e}") from e
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise InputError(f"exporter state {state_dir / CHECKPOINT_STATE} is malformed")
    return doc


def save_checkpoints(state_dir: Path, members: dict[str, bytes]) -> None:
    """Remember the checkpoints just packed, for the next export's consistency proofs.

    Merged into what is remembered under the state lock, so a concurrent export's
    checkpoints are kept; a remembered tree head never moves backwards.

    Raises:
        InputError: the state cannot be read, is malformed, or cannot be written.
    """
    packed: dict[str, str] = {}
    for path, data in members.items():
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "tlog" and parts[2] == "checkpoint.txt":
            packed[parts[1]] = data.decode()
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with locked_state(state_dir):
            current = load_checkpoints(state_dir)
            for log_id_hex, note in packed.items():
                old = current.get(log_id_hex)
                # Never move the remembered tree head backwards.
                if (
                    old is None
                    or parse_checkpoint(note).tree_size > parse_checkpoint(old).tree_size
                ):
                    current[log_id_hex] = note
            write_atomic(
                state_dir / CHECKPOINT_STATE, json.dumps(current, sort_keys=True, indent=1)
            )
    except OSError as e:
        raise InputError(f"cannot update {state_dir / CHECKPOINT_STATE}: {e.strerror or e}") from e
