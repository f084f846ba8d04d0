"""The one HTTP layer of the connected side (registries, Rekor, key URLs).

- :mod:`.http`: httpx client construction, :class:`~.http.RetryPolicy` and the retry
  loop, bounded body reads, one-line transport-error descriptions, :func:`~.http.fetch_url`.

Nothing under :mod:`dhi_offline.verify` imports this package: verification is offline.
"""
