"""Authentication: Docker config credentials, helpers, Basic and Bearer token flows."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dhi_offline.errors import InputError, RegistryAuthError
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.auth import (
    Challenge,
    Credentials,
    DockerConfigCredentials,
    credential_server,
    parse_www_authenticate,
)
from dhi_offline.oci.client import RegistryClient, RetryPolicy
from tests.support.registry import (
    ImageFixture,
    RunningRegistry,
    TokenServer,
    bcrypt_hash,
    bcrypt_source,
    build_image,
    require_registry_tools,
    run_registry,
    skopeo_push,
)

# ------------------------------------------------------------------ config.json


def _config(tmp_path: Path, content: dict[str, object]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(content))
    return tmp_path


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_auths_entries(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": _auth("hub", "p:w")},
                "reg.example:5000": {"auth": _auth("alice", "secret")},
                "https://other.example/v2/": {"username": "bob", "password": "pw"},
                "idp.example": {"identitytoken": "refresh-me"},
                "tok.example": {"registrytoken": "bearer-me"},
                "empty.example": {},
            }
        },
    )
    store = DockerConfigCredentials(config, env={})
    assert store.get("docker.io") == Credentials("hub", "p:w")
    assert store.get("reg.example:5000") == Credentials("alice", "secret")
    assert store.get("other.example") == Credentials("bob", "pw")
    assert store.get("idp.example") == Credentials(identity_token="refresh-me")
    assert store.get("tok.example") == Credentials(registry_token="bearer-me")
    assert store.get("empty.example") is None
    assert store.get("unknown.example") is None
    assert "secret" not in repr(store.get("reg.example:5000"))


def test_docker_hub_key_variants(tmp_path: Path) -> None:
    config = _config(tmp_path, {"auths": {"index.docker.io": {"auth": _auth("u", "p")}}})
    assert DockerConfigCredentials(config, env={}).get("docker.io") == Credentials("u", "p")
    assert credential_server("docker.io") == "https://index.docker.io/v1/"
    assert credential_server("ghcr.io") == "ghcr.io"


def test_docker_config_env_and_missing_file(tmp_path: Path) -> None:
    _config(tmp_path / "cfg", {"auths": {"r.example": {"auth": _auth("u", "p")}}})
    store = DockerConfigCredentials(env={"DOCKER_CONFIG": str(tmp_path / "cfg")})
    assert store.config_path == tmp_path / "cfg" / "config.json"
    assert store.get("r.example") == Credentials("u", "p")
    assert DockerConfigCredentials(tmp_path / "none", env={}).get("r.example") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
        (json.dumps({"auths": {"r.example": {"auth": "!!!"}}}), "not base64"),
        (json.dumps({"auths": {"r.example": {"auth": _auth("nocolon", "")[:-4]}}}), "base64"),
        (json.dumps({"credsStore": "../evil"}), "helper name"),
    ],
)
def test_bad_config_is_an_input_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(InputError, match=message):
        DockerConfigCredentials(tmp_path, env={}).get("r.example")


@pytest.fixture
def helper_path(tmp_path: Path) -> Iterator[Path]:
    """A directory with a fake ``docker-credential-test`` helper (the real protocol)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-test"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 3\n'
        "read server\n"
        'echo "$server" >> "$(dirname "$0")/asked"\n'
        'case "$server" in\n'
        '  https://index.docker.io/v1/) echo \'{"ServerURL":"x","Username":"hubuser",'
        '"Secret":"hubpw"}\' ;;\n'
        '  helper.example) echo \'{"ServerURL":"x","Username":"<token>",'
        '"Secret":"idtok"}\' ;;\n'
        '  broken.example) echo "keychain locked" >&2; exit 1 ;;\n'
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    yield bin_dir


def test_credential_helpers(tmp_path: Path, helper_path: Path) -> None:
    config = _config(
        tmp_path / "cfg",
        {
            "credsStore": "test",
            "credHelpers": {"special.example": "missing-helper"},
            "auths": {"fallback.example": {"auth": _auth("file", "pw")}},
        },
    )
    env = {**os.environ, "PATH": f"{helper_path}:{os.environ['PATH']}"}
    store = DockerConfigCredentials(config, env=env)
    assert store.get("docker.io") == Credentials("hubuser", "hubpw")
    assert store.get("helper.example") == Credentials(identity_token="idtok")
    # Not in the helper: the auths entry of the file is used.
    assert store.get("fallback.example") == Credentials("file", "pw")
    assert store.get("nowhere.example") is None
    with pytest.raises(RegistryAuthError, match=r"failed for broken\.example \(exit 1\): keychain"):
        store.get("broken.example")
    with pytest.raises(RegistryAuthError, match=r"docker-credential-missing-helper .* not on PATH"):
        store.get("special.example")
    # The helper got the server URL on stdin; Docker Hub under its legacy key; cached.
    store.get("docker.io")
    asked = (helper_path / "asked").read_text().split()
    assert asked.count("https://index.docker.io/v1/") == 1
    assert "helper.example" in asked


# ------------------------------------------------------------------ challenges


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
            [
                Challenge(
                    "bearer",
                    {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"},
                )
            ],
        ),
        (
            'Bearer realm="r",service="s",scope="repository:a/b:pull,push",error="invalid_token"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "r",
                        "service": "s",
                        "scope": "repository:a/b:pull,push",
                        "error": "invalid_token",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            'Basic realm="a", Bearer realm="b", service=x',
            [
                Challenge("basic", {"realm": "a"}),
                Challenge("bearer", {"realm": "b", "service": "x"}),
            ],
        ),
        ('Bearer realm="say \\"hi\\""', [Challenge("bearer", {"realm": 'say "hi"'})]),
        ("Negotiate abc123==", [Challenge("negotiate", {"": "abc123=="})]),
        ("", []),
    ],
)
def test_parse_www_authenticate(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


# ------------------------------------------------------------------ Basic (htpasswd)


def _client(config_dir: Path | None, **kwargs: object) -> RegistryClient:
    options: dict[str, object] = {
        "credentials": DockerConfigCredentials(config_dir, env={})
        if config_dir is not None
        else DockerConfigCredentials(Path("/nonexistent-dhi-offline"), env={}),
        "sleep": lambda _s: None,
        "retry": RetryPolicy(max_attempts=2),
    }
    options.update(kwargs)
    return RegistryClient(**options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def basic_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningRegistry, ImageFixture]]:
    require_registry_tools()
    if bcrypt_hash("probe") is None:
        pytest.skip(f"no bcrypt implementation for htpasswd ({bcrypt_source()})")
    base = tmp_path_factory.mktemp("basic")
    image = build_image(base / "layout")
    with run_registry(base / "registry", users={"alice": "wonderland"}) as registry:
        skopeo_push(image.layout, "v1", f"{registry.host}/ns/app:v1", creds="alice:wonderland")
        yield registry, image


@pytest.mark.integration
def test_basic_auth_with_docker_config(
    basic_registry: tuple[RunningRegistry, ImageFixture], tmp_path: Path
) -> None:
    registry, image = basic_registry
    config = _config(tmp_path, {"auths": {registry.host: {"auth": _auth("alice", "wonderland")}}})
    with _client(config) as client:
        top = client.get_manifest(registry.host, "ns/app", "v1")
        assert top.digest == image.index.digest
        assert client.requests == 2  # 401 challenge, then with credentials
        blob, data = next(iter(image.platforms[0].blobs.items()))
        assert client.get_blob(registry.host, "ns/app", blob, len(data)) == data
        assert client.requests == 3  # credentials sent up front from now on


@pytest.mark.integration
def test_basic_auth_wrong_credentials(
    basic_registry: tuple[RunningRegistry, ImageFixture], tmp_path: Path
) -> None:
    registry, _ = basic_registry
    config = _config(tmp_path, {"auths": {registry.host: {"auth": _auth("alice", "wrong")}}})
    with _client(config) as client, pytest.raises(RegistryAuthError) as info:
        client.get_manifest(registry.host, "ns/app", "v1")
    assert info.value.one_line() == (
        f"registry {registry.host} repository ns/app: tag v1: "
        f"the registry refused the credentials for {registry.host}"
    )
    assert info.value.exit_code == 2


@pytest.mark.integration
def test_basic_auth_without_credentials(
    basic_registry: tuple[RunningRegistry, ImageFixture],
) -> None:
    registry, _ = basic_registry
    with _client(None) as client, pytest.raises(RegistryAuthError) as info:
        client.get_manifest(registry.host, "ns/app", "v1")
    assert info.value.one_line().endswith(
        f"no credentials for {registry.host} (docker login {registry.host})"
    )


# ------------------------------------------------------------------ Bearer (token server)


@pytest.fixture(scope="module")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningRegistry, TokenServer, ImageFixture]]:
    """A registry with ``auth: token`` trusting a loopback token server's certificate."""
    require_registry_tools()
    base = tmp_path_factory.mktemp("token")
    image = build_image(base / "layout")
    server = TokenServer(
        base / "token",
        users={"bob": "builder"},
        anonymous_pull=True,
        refresh_tokens={"refresh-123": "bob"},
    )
    with server, run_registry(base / "registry", token=server.registry_config()) as registry:
        skopeo_push(image.layout, "v1", f"{registry.host}/ns/app:v1", creds="bob:builder")
        skopeo_push(image.layout, "v1", f"{registry.host}/ns/other:v1", creds="bob:builder")
        server.requests.clear()
        yield registry, server, image


@pytest.mark.integration
def test_bearer_token_flow_and_cache(
    token_registry: tuple[RunningRegistry, TokenServer, ImageFixture], tmp_path: Path
) -> None:
    registry, server, image = token_registry
    server.requests.clear()
    config = _config(tmp_path, {"auths": {registry.host: {"auth": _auth("bob", "builder")}}})
    with _client(config) as client:
        top = client.get_manifest(registry.host, "ns/app", "v1")
        assert top.data == image.index_bytes
        assert client.requests == 3  # 401, token, retry
        for p in image.platforms:
            client.get_manifest(registry.host, "ns/app", p.manifest.digest)
        assert client.requests == 5  # the cached token is reused
        (asked,) = server.requests
        assert asked.method == "GET"
        assert asked.user == "bob"
        assert asked.service == server.service
        assert asked.scopes == ["repository:ns/app:pull"]
        # Another repository: a new scope, fetched up front without another 401.
        client.get_manifest(registry.host, "ns/other", "v1")
        assert client.requests == 7
        assert server.requests[-1].scopes == ["repository:ns/other:pull"]


@pytest.mark.integration
def test_bearer_anonymous_pull(
    token_registry: tuple[RunningRegistry, TokenServer, ImageFixture],
) -> None:
    registry, server, image = token_registry
    server.requests.clear()
    with _client(None) as client:
        assert client.get_manifest(registry.host, "ns/app", "v1").digest == image.index.digest
    assert [r.user for r in server.requests] == [None]


@pytest.mark.integration
def test_bearer_wrong_credentials(
    token_registry: tuple[RunningRegistry, TokenServer, ImageFixture], tmp_path: Path
) -> None:
    registry, server, _ = token_registry
    config = _config(tmp_path, {"auths": {registry.host: {"auth": _auth("bob", "nope")}}})
    with _client(config) as client, pytest.raises(RegistryAuthError) as info:
        client.get_manifest(registry.host, "ns/app", "v1")
    assert info.value.one_line() == (
        f"registry {registry.host} repository ns/app: tag v1: token from {server.realm}: "
        f"refused the credentials for {registry.host} (HTTP 401)"
    )


@pytest.mark.integration
def test_bearer_identity_token(
    token_registry: tuple[RunningRegistry, TokenServer, ImageFixture], tmp_path: Path
) -> None:
    """An identity token from ``docker login`` is exchanged with an OAuth2 POST."""
    registry, server, image = token_registry
    server.requests.clear()
    config = _config(tmp_path, {"auths": {registry.host: {"identitytoken": "refresh-123"}}})
    with _client(config) as client:
        assert client.get_manifest(registry.host, "ns/app", "v1").digest == image.index.digest
    (asked,) = server.requests
    assert (asked.method, asked.grant_type, asked.user) == ("POST", "refresh_token", "bob")


@pytest.mark.integration
def test_bearer_push_scope(
    token_registry: tuple[RunningRegistry, TokenServer, ImageFixture], tmp_path: Path
) -> None:
    registry, server, _ = token_registry
    config = _config(tmp_path, {"auths": {registry.host: {"auth": _auth("bob", "builder")}}})
    with _client(config) as client:
        desc = client.push_blob(registry.host, "ns/pushed", b"hello", mt.OCTET_STREAM)
        assert client.get_blob(registry.host, "ns/pushed", desc.digest, 5) == b"hello"
    assert "repository:ns/pushed:pull,push" in [s for r in server.requests for s in r.scopes]


@pytest.mark.integration
def test_registry_token_is_sent_as_is(
    token_registry: tuple[RunningRegistry, TokenServer, ImageFixture], tmp_path: Path
) -> None:
    registry, server, image = token_registry
    token = server.issue("bob", [{"type": "repository", "name": "ns/app", "actions": ["pull"]}])
    config = _config(tmp_path, {"auths": {registry.host: {"registrytoken": token}}})
    server.requests.clear()
    with _client(config) as client:
        assert client.get_manifest(registry.host, "ns/app", "v1").digest == image.index.digest
    assert server.requests == []  # never asked the token server
