"""Registries and OCI layouts: references, the registry client, layouts, referrers.

Everything that touches the network lives here, and httpx errors are translated into
the :class:`~dhi_offline.errors.RegistryError` family at this package's edge.

- :mod:`.reference`: parse ``[registry/]repo[:tag][@digest]`` and ``oci-layout:`` references.
- :mod:`.mediatypes`: media types, :class:`Descriptor`, :class:`Platform`.
- :mod:`.content`: :class:`Fetched`, :class:`ReferrersResult`, streaming digest checks.
- :mod:`.auth`: Docker config credentials, credential helpers, challenge parsing.
- :mod:`.client`: :class:`RegistryClient` (auth, retries, referrers with tag fallback).
- :mod:`.layout`: read (:class:`OciLayout`) and write (:class:`OciLayoutWriter`) layouts.
- :mod:`.source`: the :class:`Source` protocol the exporter walks, for both.
"""
