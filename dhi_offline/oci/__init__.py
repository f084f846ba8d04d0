"""Registries and OCI layouts: references, the registry client, layouts, referrers.

Everything that touches the network lives here, and httpx errors are translated into
the :class:`~dhi_offline.errors.RegistryError` family at this package's edge.

- :mod:`.reference`: parse ``[registry/]repo[:tag][@digest]`` and ``oci-layout:`` references.
- :mod:`.mediatypes`: media types, :class:`Descriptor`, :class:`Platform`.
- :mod:`.content`: :class:`Fetched`, :class:`ReferrersResult`, streaming digest checks.
- :mod:`.auth`: Docker config credentials, credential helpers, challenge parsing.
- :mod:`.client`: :class:`RegistryClient`, the one registry client, assembled from
  :mod:`.transport` (endpoints, request loop, retries), :mod:`.token` (401 challenges,
  bearer tokens), :mod:`.status` (error translation), :mod:`.download` (verified
  reads), :mod:`.referrers` (API with tag fallback) and :mod:`.upload` (blob and
  manifest pushes).
- :mod:`.layout`: read (:class:`OciLayout`) and write (:class:`OciLayoutWriter`) layouts.
- :mod:`.source`: the :class:`Source` protocol the exporter walks, for both.
"""
