"""dhi_offline.tlog: transparency-log checks that need no network.

``merkle`` (RFC 6962 inclusion and consistency proofs), ``checkpoint`` (C2SP signed-note
checkpoints of Rekor v1 and v2) and ``set`` (Rekor v1 signed entry timestamps).
"""
