"""What each admission enforcer needs to admit only images the site verified.

An image is admitted when its site signature (cosign, key-based, ``sha256-<hex>.sig``)
verifies with the site public key AND its SLSA Verification Summary Attestation, signed
with the same key, says ``PASSED``, was written by dhi-offline and carries no
``DHI_OFFLINE_UNSAFE`` level. The push writes no image signature for a platform that
failed policy or was verified with an unsafe switch, so a signature-only enforcer
(containers-policy.json) still refuses those.

Every function here is pure: it takes the site public key (PEM bytes) and the image
globs, and returns documents or text. Field names were checked against Kyverno 1.19,
sigstore policy-controller 0.15.1 and containers/image 5.39 (``docs/admission.md``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline import __version__
from dhi_offline.deliver import names
from dhi_offline.errors import TrustMaterialError, UsageError
from dhi_offline.oci.reference import (
    validate_digest,
    validate_registry,
    validate_repository,
    validate_tag,
)
from dhi_offline.trust.keys import PublicKey, load_pem


class AdmissionKind(StrEnum):
    """The enforcers ``admission-config`` writes a configuration for."""

    kyverno = "kyverno"
    policy_controller = "policy-controller"
    containers_policy = "containers-policy"


@dataclass(frozen=True)
class AdmissionFile:
    """One file of a configuration: where it goes (relative) and what it holds."""

    path: str
    """Relative path: the default file name, or, for containers-policy, the path under
    the output directory (``policy.json``, ``registries.d/dhi-offline.yaml``)."""
    text: str


KYVERNO_FILE: Final = "dhi-offline-kyverno.yaml"
POLICY_CONTROLLER_FILE: Final = "dhi-offline-policy-controller.yaml"
CONTAINERS_POLICY_FILE: Final = "policy.json"
CONTAINERS_REGISTRIES_FILE: Final = "registries.d/dhi-offline.yaml"

KYVERNO_POLICY_NAME: Final = "dhi-offline-site-verdict"
SIGNATURE_POLICY_NAME: Final = "dhi-offline-site-signature"
VSA_POLICY_NAME: Final = "dhi-offline-site-vsa"

ALL_IMAGES: Final = "*"

CONTAINERS_POLICY_NOTE: Final = (
    "policy.json checks the site signature only: containers/image cannot read the VSA. "
    "push signs no digest whose verdict is FAILED or used an unsafe switch (and removes "
    "an earlier site signature of it), so those are refused too (docs/admission.md)."
)

# What an image glob may hold: the characters policy-controller accepts in a glob
# (pkg/apis/glob), which Kyverno and containers-policy scopes accept too.
_GLOB_CHARS = re.compile(r"[A-Za-z0-9._\-/:@*]+")
_PLAIN_YAML = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# What YAML may hold raw in a double-quoted scalar: printable, and not one of its line
# breaks (U+0085, U+2028, U+2029); json.dumps already escapes the C0 controls.
_YAML_RAW_UNSAFE = re.compile(
    r"[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# YAML 1.1 reads these plain scalars as booleans or null (kubectl's parser is YAML 1.1).
_YAML_KEYWORDS = frozenset(
    {"y", "n", "yes", "no", "true", "false", "on", "off", "null"},
)


# -- the site key and the globs -------------------------------------------------------------


def site_public_key(pem: bytes) -> PublicKey:
    """The site's public key, from the PEM the push signs with (ECDSA P-256).

    Raises:
        TrustMaterialError: a private key, not exactly one PEM public key, or not P-256.
    """
    if b"PRIVATE KEY-----" in pem:
        raise TrustMaterialError("is a PRIVATE key: give its public half (SITE.pub)")
    if pem.count(b"-----BEGIN ") > 1:
        # The configs carry one key: a second block would be silently dropped.
        raise TrustMaterialError("holds more than one PEM block: give the one site public key")
    key = load_pem(pem)
    if not isinstance(key.key, ec.EllipticCurvePublicKey) or key.algorithm != "ecdsa-p256":
        # Every enforcer is configured for the one key type push signs with; another
        # type would verify nothing and refuse every image.
        raise TrustMaterialError(
            f"the site key must be ECDSA P-256, the key push signs with (got {key.algorithm})"
        )
    return key


def check_globs(globs: Sequence[str]) -> tuple[str, ...]:
    """The image globs to enforce: ``*`` (every image) when none is given.

    A glob is ``*`` alone, or an image reference starting with a registry host
    (``registry.site/dhi/*``), where ``*`` matches any run of characters, ``/`` included.

    Raises:
        UsageError: a glob an enforcer cannot read the same way.
    """
    if not globs:
        return (ALL_IMAGES,)
    checked: list[str] = []
    for glob in globs:
        if glob == ALL_IMAGES:
            checked.append(glob)
            continue
        if not _GLOB_CHARS.fullmatch(glob):
            raise UsageError(
                f"--images {glob!r}: only letters, digits and . _ - / : @ * are allowed"
            )
        if "**" in glob:
            raise UsageError(f"--images {glob!r}: write '*' (it already matches '/')")
        host, slash, _ = glob.partition("/")
        if not slash or "*" in host or not ("." in host or ":" in host or host == "localhost"):
            # Enforcers match the fully expanded reference (registry/repo:tag): a pattern
            # without a registry host would silently match nothing.
            raise UsageError(
                f"--images {glob!r}: start with the registry host "
                "(e.g. registry.site/dhi/*), or give '*' for every image"
            )
        checked.append(glob)
    return tuple(dict.fromkeys(checked))


# -- Kyverno ---------------------------------------------------------------------------------

# JMESPath: how many verifiedLevels start with the unsafe prefix (0 when the list is absent).
_UNSAFE_COUNT = (
    "{{ length(verifiedLevels[?starts_with(@, '" + names.UNSAFE_LEVEL_PREFIX + "')] || `[]`) }}"
)


def kyverno_policy(site_key_pem: bytes, globs: Sequence[str] = ()) -> dict[str, Any]:
    """A Kyverno ``ClusterPolicy`` (kyverno.io/v1) with one ``verifyImages`` rule.

    The rule verifies the site signature (``attestors``) and then the VSA
    (``attestations``: every VSA of the image must pass the conditions). Transparency
    log and SCT checks are off: the site signs offline, with no Rekor entry.

    Raises:
        TrustMaterialError: the key is not the site's public key.
        UsageError: a glob cannot be used.
    """
    key = site_public_key(site_key_pem)
    attestors = [{"count": 1, "entries": [{"keys": _kyverno_key(key)}]}]
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": KYVERNO_POLICY_NAME,
            "annotations": {
                "policies.kyverno.io/title": "dhi-offline site verdict",
                "policies.kyverno.io/description": (
                    "Admit an image only if the site signature verifies and its SLSA VSA "
                    "says PASSED with no unsafe verification."
                ),
                names.ANN_SITE_KEY_ID: key.key_id,
            },
        },
        "spec": {
            "background": False,
            "webhookConfiguration": {"failurePolicy": "Fail", "timeoutSeconds": 30},
            "rules": [
                {
                    "name": "site-verdict",
                    "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                    "verifyImages": [
                        {
                            "imageReferences": list(check_globs(globs)),
                            "failureAction": "Enforce",
                            "mutateDigest": True,
                            "verifyDigest": True,
                            "required": True,
                            "attestors": attestors,
                            "attestations": [
                                {
                                    "name": "vsa",
                                    "type": names.VSA_PREDICATE_TYPE,
                                    "attestors": attestors,
                                    "conditions": [{"all": _kyverno_conditions()}],
                                }
                            ],
                        }
                    ],
                }
            ],
        },
    }


def _kyverno_key(key: PublicKey) -> dict[str, Any]:
    return {
        "publicKeys": key.pem().decode("ascii"),
        "rekor": {"ignoreTlog": True},
        "ctlog": {"ignoreSCT": True},
    }


def _kyverno_conditions() -> list[dict[str, Any]]:
    return [
        {
            "key": "{{ verificationResult }}",
            "operator": "Equals",
            "value": names.PASSED,
            "message": f"the site VSA does not say {names.PASSED}",
        },
        {
            "key": "{{ verifier.id }}",
            "operator": "Equals",
            "value": names.VERIFIER_ID,
            "message": "the VSA was not written by dhi-offline",
        },
        {
            "key": _UNSAFE_COUNT,
            "operator": "Equals",
            "value": 0,
            "message": "the image was verified with an unsafe switch",
        },
    ]


# -- sigstore policy-controller -------------------------------------------------------------

# Rego rather than CUE: CUE unifies the policy with the statement, so a field the VSA
# lacks would take the policy's value and pass; Rego sees only what the VSA says.
# ``import rego.v1`` makes the same text valid under the Rego v0 parser cosign v3 uses
# for policy-controller (package ``sigstore``, rule ``isCompliant``) and under Rego v1.
VSA_REGO: Final = f"""package sigstore

import rego.v1

default isCompliant := false

unsafe_levels contains level if {{
  some level in input.predicate.verifiedLevels
  startswith(level, "{names.UNSAFE_LEVEL_PREFIX}")
}}

isCompliant if {{
  input.predicateType == "{names.VSA_PREDICATE_TYPE}"
  input.predicate.verificationResult == "{names.PASSED}"
  input.predicate.verifier.id == "{names.VERIFIER_ID}"
  count(unsafe_levels) == 0
}}
"""


def policy_controller_policies(
    site_key_pem: bytes, globs: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Two policy-controller ``ClusterImagePolicy`` objects (policy.sigstore.dev/v1beta1).

    Within one policy, any authority admits; every policy matching an image must admit
    it. So the signature and the VSA are two policies: both must pass. An authority with
    a ``key`` and no ``ctlog`` verifies without a transparency log.

    Raises:
        TrustMaterialError: the key is not the site's public key.
        UsageError: a glob cannot be used.
    """
    key = site_public_key(site_key_pem)
    images = [{"glob": _policy_controller_glob(g)} for g in check_globs(globs)]
    pem = key.pem().decode("ascii")
    signature = {
        "name": "site-signature",
        "key": {"data": pem},
    }
    vsa = {
        "name": "site-vsa",
        "key": {"data": pem},
        "attestations": [
            {
                "name": "vsa",
                "predicateType": names.VSA_PREDICATE_TYPE,
                "policy": {"type": "rego", "data": VSA_REGO},
            }
        ],
    }
    return [
        _cluster_image_policy(SIGNATURE_POLICY_NAME, key, images, signature),
        _cluster_image_policy(VSA_POLICY_NAME, key, images, vsa),
    ]


def _cluster_image_policy(
    name: str, key: PublicKey, images: list[dict[str, str]], authority: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "policy.sigstore.dev/v1beta1",
        "kind": "ClusterImagePolicy",
        "metadata": {"name": name, "annotations": {names.ANN_SITE_KEY_ID: key.key_id}},
        "spec": {"mode": "enforce", "images": images, "authorities": [authority]},
    }


def _policy_controller_glob(glob: str) -> str:
    # policy-controller's '*' stops at '/', and '*' alone means docker.io library
    # images only; '**' is "any characters". It names Docker Hub index.docker.io.
    if glob == ALL_IMAGES:
        return "**"
    if glob.startswith("docker.io/"):
        glob = "index." + glob
    return glob.replace("*", "**")


# -- containers-policy.json and registries.d ------------------------------------------------


def containers_scopes(globs: Sequence[str]) -> tuple[str, ...]:
    """The ``docker`` transport scopes the globs name (``""``: the transport default).

    A scope is a registry, a namespace, a repository or one image: a glob may end in
    ``/*`` (everything under it) or ``:*`` (every tag of a repository), or hold no ``*``.

    Raises:
        UsageError: a glob with a ``*`` elsewhere, which no scope expresses.
    """
    scopes: list[str] = []
    for glob in check_globs(globs):
        if glob == ALL_IMAGES:
            scopes.append("")
            continue
        stem = glob[:-2] if glob.endswith(("/*", ":*")) else glob
        if "*" in stem or (glob.endswith(":*") and "@" in stem):
            raise UsageError(
                f"--images {glob!r}: containers-policy.json scopes are registry, namespace "
                "or repository prefixes; a '*' can only end the glob as '/*' or ':*' "
                "(or be the whole glob)"
            )
        try:
            _check_scope(stem)
        except UsageError as e:
            # containers/image refuses the whole policy.json over one bad scope.
            raise UsageError(
                f"--images {glob!r}: not a containers-policy scope: {e.message}"
            ) from e
        scopes.append(stem)
    return tuple(dict.fromkeys(scopes))


def _check_scope(scope: str) -> None:
    """``host[:port]``, ``host/namespace``, ``host/repo``, ``host/repo:tag`` or ``@digest``."""
    host, _, path = scope.partition("/")
    validate_registry(host)
    if not path:
        return
    repository, at, digest = path.partition("@")
    if at:
        validate_digest(digest)
    else:
        name, colon, tag = repository.rpartition(":")
        if colon and "/" not in tag:
            repository = name
            validate_tag(tag)
    validate_repository(repository)


def containers_policy(site_key_pem: bytes, globs: Sequence[str] = ()) -> dict[str, Any]:
    """A containers-policy.json(5): the scopes need the site signature, all else is rejected.

    ``keyData`` carries the key (base64 of the PEM), so the file is self-contained.
    ``matchRepository``: cosign signatures name a repository, not a tag.

    Raises:
        TrustMaterialError: the key is not the site's public key.
        UsageError: a glob no scope expresses.
    """
    key = site_public_key(site_key_pem)
    requirement = {
        "type": "sigstoreSigned",
        "keyData": base64.b64encode(key.pem()).decode("ascii"),
        "signedIdentity": {"type": "matchRepository"},
    }
    return {
        "default": [{"type": "reject"}],
        "transports": {"docker": {scope: [requirement] for scope in containers_scopes(globs)}},
    }


def containers_registries(globs: Sequence[str] = ()) -> dict[str, Any]:
    """A containers-registries.d(5) file: read sigstore attachments for the scopes.

    Raises:
        UsageError: a glob no scope expresses.
    """
    section = {"use-sigstore-attachments": True}
    doc: dict[str, Any] = {}
    docker: dict[str, Any] = {}
    for scope in containers_scopes(globs):
        if scope == "":
            doc["default-docker"] = section
        else:
            docker[scope] = section
    if docker:
        doc["docker"] = docker
    return doc


# -- text --------------------------------------------------------------------------------------


def _header(key: PublicKey, lines: Sequence[str]) -> str:
    out = [
        f"# Generated by dhi-offline {__version__} admission-config (docs/admission.md).",
        f"# Site key {key.key_id}.",
        *(f"# {line}" for line in lines),
    ]
    return "\n".join(out) + "\n"


def admission_files(
    kind: AdmissionKind, site_key_pem: bytes, globs: Sequence[str] = ()
) -> list[AdmissionFile]:
    """The file(s) of ``kind``'s configuration, rendered.

    Raises:
        TrustMaterialError: the key is not the site's public key.
        UsageError: a glob the kind cannot express.
    """
    key = site_public_key(site_key_pem)
    if kind is AdmissionKind.kyverno:
        header = _header(
            key,
            [
                "Kyverno ClusterPolicy (checked against Kyverno 1.19): admits an image only",
                "if its site signature verifies and its VSA says PASSED, unsafe-free.",
            ],
        )
        return [AdmissionFile(KYVERNO_FILE, header + to_yaml(kyverno_policy(site_key_pem, globs)))]
    if kind is AdmissionKind.policy_controller:
        header = _header(
            key,
            [
                "sigstore policy-controller ClusterImagePolicies (checked against 0.15.1):",
                "both must admit: the site signature, and a VSA that says PASSED, unsafe-free.",
                "Label namespaces policy.sigstore.dev/include=true to enforce them.",
            ],
        )
        docs = policy_controller_policies(site_key_pem, globs)
        return [AdmissionFile(POLICY_CONTROLLER_FILE, header + to_yaml(*docs))]
    policy = json.dumps(containers_policy(site_key_pem, globs), indent=4) + "\n"
    registries = _header(
        key,
        [
            "containers-registries.d(5): read sigstore attachments (the site signature)",
            "for the scopes that policy.json requires it for (containers/image 5.39).",
            *_wrap(CONTAINERS_POLICY_NOTE, 84),
        ],
    ) + to_yaml(containers_registries(globs))
    return [
        AdmissionFile(CONTAINERS_POLICY_FILE, policy),
        AdmissionFile(CONTAINERS_REGISTRIES_FILE, registries),
    ]


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def to_yaml(*documents: Mapping[str, Any]) -> str:
    """Documents as a YAML stream (``---`` between them), block style, deterministic.

    Only the shapes the configs use: mappings with string keys, lists, strings, ints,
    booleans. A string is plain when YAML cannot read it as anything else, a literal
    block when it is multi-line text, and a JSON (= YAML) double-quoted string otherwise.
    """
    return "---\n".join(_node(dict(doc), 0) for doc in documents)


def _node(value: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for k, v in value.items():
            out.append(f"{pad}{_scalar(str(k))}:" + _after_key(v, indent))
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = []
        for item in value:
            # "- " then the item's first line; the rest of it indented under the dash.
            body = _node(item, indent + 2)
            out.append(pad + "- " + body[indent + 2 :])
        return "".join(out)
    return pad + _inline(value, indent) + "\n"


def _after_key(value: Any, indent: int) -> str:
    if isinstance(value, dict) and value:
        return "\n" + _node(value, indent + 2)
    if isinstance(value, list) and value:
        return "\n" + _node(value, indent)
    return " " + _inline(value, indent) + "\n"


def _inline(value: Any, indent: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    if isinstance(value, str):
        block = _block(value, indent + 2)
        return block if block is not None else _scalar(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _scalar(text: str) -> str:
    if _PLAIN_YAML.fullmatch(text) and text.lower() not in _YAML_KEYWORDS:
        return text
    # A JSON string is a YAML double-quoted scalar, once the characters YAML must not
    # hold raw (DEL, C1 controls, its own line breaks U+0085/2028/2029) are escaped.
    return _YAML_RAW_UNSAFE.sub(_escape, json.dumps(text, ensure_ascii=False))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _block(text: str, indent: int) -> str | None:
    """``text`` as a literal block scalar, when it is multi-line text that reads back as is."""
    if "\n" not in text.rstrip("\n") or text.endswith("\n\n") or text.startswith((" ", "\n")):
        return None
    lines = text.rstrip("\n").split("\n")
    if any(ln != ln.rstrip() or not ln.isprintable() for ln in lines):
        return None
    pad = " " * indent
    chomp = "" if text.endswith("\n") else "-"
    body = "\n".join(pad + ln if ln else "" for ln in lines)
    return f"|{chomp}\n{body}"
