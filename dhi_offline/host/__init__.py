"""Host-side orchestration on the air-gapped machine: assemble trust, load policy, verify
a bundle against the evidence archive, import it, re-verify what the archive holds.

The CLI parses options, calls these functions and renders what they return; nothing
here prints.
"""
