"""Export: resolve images, discover their evidence, complete log proofs, write the bundle."""
