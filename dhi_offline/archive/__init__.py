"""The evidence archive on the air-gapped host: bundles, receipts, hash-chained log."""
