"""Write the adversarial corpus: one small hostile file per attack on the bundle reader.

    python -m tests.adversarial.generate OUTDIR

Every entry of :data:`CASES` names a file, says what it attacks and what
``dhi-offline verify`` and ``dhi-offline inspect`` must answer: the exit code and words
the one-line error must contain. The same table writes ``OUTDIR/README.md`` and drives
``tests/adversarial/test_corpus.py``, so the documentation cannot drift from the test.

Bundles that must get past the signature check (step 2 of the bundle plan, check 2a of
``docs/format.md`` section 8) are signed with the FIXED test exporter key of
``corpus/keys/``: a test key, published on purpose, that signs nothing but this corpus.
It is created once (when missing) and reused, so regenerating gives byte-identical files
(RFC 6979 signatures, fixed times, the same zstd settings; ``test_corpus.py`` checks this
when the versions match).

Bombs are generated streaming: 1 MiB of zeros at a time through one zstd compressor
(and one SHA-256), so the generator never holds more than a chunk of what a file
inflates to. Every file stays small; the whole corpus is about 200 KB.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import rfc8785
import zstandard
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle import layout, tarformat
from dhi_offline.bundle.signing import load_private_key, public_key_of
from tests.bundle.helpers import EPOCH, Raw, compress, manifest_for, signed_head, tar_bytes

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
KEYS = CORPUS / "keys"
SUFFIX = layout.FILE_SUFFIX

CREATED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
EXPIRES = datetime(2099, 12, 31, 0, 0, 0, tzinfo=UTC)
"""Far in the future, so that cases past step 4 never turn into "expired" ones."""

REKOR_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
"""rekor.sigstore.dev in the shipped production trusted root: a log the verifier knows,
so a hostile checkpoint of it reaches the checkpoint parser."""

LIBZSTD = (1, 5, 7)
"""The libzstd the committed corpus was written with; test_corpus.py regenerates it and
compares bytes only under this version (another may compress differently)."""

MARKER = "dhi-adv-pwned"
"""Every escape target is named with this marker; test_corpus.py looks for it."""

_MiB = 1024 * 1024
BOMB_SIZE = 1024 * _MiB
"""What the bombs' big member inflates to (1 GiB of zeros, 32 KiB compressed)."""
LIE_SIZE = 10 * _MiB
"""What the lying bomb declares: small enough to pass the up-front ratio check."""
HUGE_DECLARED = 2**50
HUGE_TAR_SIZE = 0o77777777777
"""The largest size an 11-digit USTAR size field holds (8 GiB - 1)."""
DEEP = 10_000
CHECKPOINT_SIZE = 10 * _MiB

INDEX = b'{"attestations":[],"tlogCompletions":[],"version":1}\n'
BLOB = b'{"note":"an evidence blob of the corpus","pad":"' + b"0123456789abcdef" * 200 + b'"}\n'
GOOD: list[tuple[str, bytes]] = [
    (layout.blob_path(hashlib.sha256(BLOB).hexdigest()), BLOB),
    (layout.EVIDENCE, INDEX),
]
"""The members of the control bundle, sorted by path (as the format requires)."""


# -- keys ---------------------------------------------------------------------------------


def _write_key(prefix: Path, *, private: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    if private:
        prefix.with_suffix(".pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    prefix.with_suffix(".pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def ensure_keys(keys: Path = KEYS) -> None:
    """Create the fixed test keys once: exporter (trusted), attacker (not), publisher."""
    keys.mkdir(parents=True, exist_ok=True)
    for name, private in (("exporter", True), ("attacker", True), ("publisher", False)):
        if not (keys / f"{name}.pub").exists():
            _write_key(keys / name, private=private)


@dataclass(frozen=True)
class Ctx:
    """The keys a case is built with."""

    key: ec.EllipticCurvePrivateKey
    """The trusted test exporter."""
    attacker: ec.EllipticCurvePrivateKey
    """A key the verifying host does not trust."""

    @classmethod
    def load(cls, keys: Path = KEYS) -> Ctx:
        """The committed test keys."""
        return cls(load_private_key(keys / "exporter.pem"), load_private_key(keys / "attacker.pem"))


# -- building blocks -----------------------------------------------------------------------


def manifest_bytes(ctx: Ctx, listed: list[tuple[str, bytes]], **overrides: object) -> bytes:
    """Canonical manifest bytes listing ``listed``, naming the trusted exporter."""
    fields: dict[str, object] = {"created": CREATED, "expires": EXPIRES, "images": ()}
    fields.update(overrides)
    return manifest_for(ctx.key, listed, **fields).to_json()


def head(ctx: Ctx, manifest: bytes) -> list[Raw]:
    """``manifest.json`` and its signature by the trusted exporter."""
    return signed_head(ctx.key, manifest)


def regular(members: list[tuple[str, bytes]]) -> list[Raw]:
    """Canonical regular-file members."""
    return [Raw.regular(p, d) for p, d in members]


def good_tar(ctx: Ctx) -> bytes:
    """The inflated tar of the control bundle."""
    return tar_bytes(head(ctx, manifest_bytes(ctx, GOOD)) + regular(GOOD))


def after_good(ctx: Ctx, *bad: Raw) -> bytes:
    """A correctly signed head and members, then ``bad`` (which nothing lists)."""
    return tar_bytes(head(ctx, manifest_bytes(ctx, GOOD)) + regular(GOOD) + list(bad))


def signed_raw_manifest(ctx: Ctx, manifest: bytes, members: list[tuple[str, bytes]]) -> bytes:
    """A tar whose manifest is ``manifest`` (any bytes), validly signed, then ``members``."""
    return tar_bytes(head(ctx, manifest) + regular(members))


def header_bytes(
    name: bytes, size: int = 0, *, typeflag: bytes = b"0", linkname: bytes = b""
) -> bytes:
    """A USTAR header with any name bytes, a correct checksum and POSIX magic."""
    h = bytearray(tarformat.encode_header("evidence/x", size, EPOCH))
    h[0:100] = name.ljust(100, b"\0")[:100]
    h[156:157] = typeflag
    h[157:257] = linkname.ljust(100, b"\0")[:100]
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\x00 " % sum(h)
    return bytes(h)


def special(name: str, kind: bytes, *, linkname: str = "", dev: tuple[int, int] = (0, 0)) -> Raw:
    """A non-regular member as Python's tarfile writes it (POSIX ustar)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mtime = EPOCH
    info.devmajor, info.devminor = dev
    return Raw.from_tarinfo(info)


def deep_json(depth: int) -> bytes:
    """``depth`` nested arrays."""
    return b"[" * depth + b"]" * depth


def zstd(data: bytes, **kwargs: bool) -> bytes:
    """One zstd frame declaring its content size and carrying its checksum, as format v1
    requires, unless told otherwise (``tests.bundle.helpers.compress``)."""
    return compress(data, **kwargs)


def frame_parts(frame: bytes) -> tuple[int, int, bytes]:
    """(frame header descriptor, window descriptor, blocks + checksum) of a frame
    written without content size (6-byte header: magic, descriptor, window)."""
    fhd = frame[4]
    if fhd & 0xE3 or len(frame) < 6:  # content size, single segment, dictionary flags
        raise ValueError("expected a streamed frame without content size or dictionary")
    return fhd, frame[5], frame[6:]


def with_header(
    frame: bytes, *, content_size: int | None = None, window: int | None = None, dict_id: int = 0
) -> bytes:
    """Re-head a streamed frame: declare ``content_size`` (8-byte field, true or not),
    replace the window descriptor, or claim a dictionary; the blocks are kept."""
    fhd, wd, rest = frame_parts(frame)
    fields = b""
    if dict_id:
        fhd |= 0x01  # Dictionary_ID_flag 1: one byte
        fields += bytes([dict_id])
    if content_size is not None:
        fhd |= 0xC0  # Frame_Content_Size_flag 3: eight bytes
        fields += content_size.to_bytes(8, "little")
    return zstandard.FRAME_HEADER + bytes([fhd, wd if window is None else window]) + fields + rest


# -- the bomb, streamed --------------------------------------------------------------------

_ZERO_CHUNK = bytes(_MiB)


def _zeros_sha256(size: int) -> str:
    h = hashlib.sha256()
    for _ in range(size // _MiB):
        h.update(_ZERO_CHUNK)
    return h.hexdigest()


def _bomb_first(ctx: Ctx) -> bytes:
    """The bomb tar up to its big member's data: signed head, then the member header."""
    obj = manifest_for(
        ctx.key, [("evidence/bomb.bin", b"")], created=CREATED, expires=EXPIRES, images=()
    ).to_obj()
    obj["members"] = [
        {"path": "evidence/bomb.bin", "sha256": _zeros_sha256(BOMB_SIZE), "size": BOMB_SIZE}
    ]
    first = b"".join(r.encode() for r in head(ctx, bytes(rfc8785.dumps(obj))))
    return first + tarformat.encode_header("evidence/bomb.bin", BOMB_SIZE, EPOCH)


def bomb_frame(ctx: Ctx) -> tuple[bytes, int]:
    """A streamed frame (no content size) of a correctly signed bundle whose one member,
    ``evidence/bomb.bin``, is 1 GiB of zeros, correctly listed: only the compression
    ratio gives it away. Built 1 MiB at a time; returns the ~32 KiB frame and the
    length of the tar it inflates to."""
    first = _bomb_first(ctx)
    body = len(first) + BOMB_SIZE
    end = tarformat.round_up(body + 1024, layout.TAR_RECORD) - body
    cobj = zstandard.ZstdCompressor(
        level=3, write_checksum=True, write_content_size=False, threads=0
    ).compressobj()
    out = io.BytesIO()
    out.write(cobj.compress(first))
    for _ in range(BOMB_SIZE // _MiB):
        out.write(cobj.compress(_ZERO_CHUNK))
    out.write(cobj.compress(bytes(end)))
    out.write(cobj.flush())
    return out.getvalue(), body + end


_BOMB: dict[str, tuple[bytes, int]] = {}


def _bomb_cached(ctx: Ctx) -> tuple[bytes, int]:
    kid = public_key_of(ctx.key).key_id
    if kid not in _BOMB:
        _BOMB[kid] = bomb_frame(ctx)
    return _BOMB[kid]


def _bomb(content_size: int | None, *, honest: bool = False) -> Callable[[Ctx], bytes]:
    """The bomb frame declaring ``content_size``, its true size (``honest``), or none."""

    def build(ctx: Ctx) -> bytes:
        frame, true_size = _bomb_cached(ctx)
        declared = true_size if honest else content_size
        return frame if declared is None else with_header(frame, content_size=declared)

    return build


# -- the cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What one command must answer: the exit code, and words its one-line stderr must
    contain (for exit 0: words of stdout, and nothing on stderr)."""

    code: int
    words: tuple[str, ...]
    xfail: str | None = None
    """A known bug in dhi_offline: the outcome test is marked xfail(strict=True) with this
    reason."""
    memory_xfail: str | None = None
    """A known bug in dhi_offline: the memory test is marked xfail(strict=True)."""


def E(code: int, *words: str, xfail: str | None = None, memory_xfail: str | None = None) -> Expect:
    """Shorthand for :class:`Expect`."""
    return Expect(code, words, xfail, memory_xfail)


@dataclass(frozen=True)
class Case:
    """One corpus file."""

    name: str
    attack: str
    verify: Expect
    inspect: Expect
    build: Callable[[Ctx], bytes] | None
    """The file's bytes; None for a case that is not a regular file (built by hand)."""
    args: tuple[str, ...] = ()
    """Extra ``verify`` arguments (e.g. an unsafe switch that reaches more parsers)."""

    @property
    def file(self) -> str:
        """The corpus file name."""
        return self.name + SUFFIX


UNVERIFIED = E(0, "UNVERIFIED")
"""``inspect`` reads only manifest.json: attacks after it are not its business, and it
says the contents are UNVERIFIED."""


def _control(ctx: Ctx) -> bytes:
    return zstd(good_tar(ctx))


def _member(name: str) -> Callable[[Ctx], bytes]:
    return lambda ctx: zstd(after_good(ctx, Raw.regular(name, b"owned\n")))


def _special(raw: Callable[[], Raw]) -> Callable[[Ctx], bytes]:
    return lambda ctx: zstd(after_good(ctx, raw(), Raw.regular("evidence/after", b"x")))


def _symlink(ctx: Ctx) -> bytes:
    # The classic: a link to a directory outside, then a file written "through" it.
    link = special("evidence/out", tarfile.SYMTYPE, linkname="/tmp")
    through = Raw(header_bytes(f"evidence/out/{MARKER}-symlink".encode(), 6), b"owned\n")
    return zstd(after_good(ctx, link, through))


def _pax(ctx: Ctx) -> bytes:
    info = tarfile.TarInfo("evidence/" + "p" * 120)  # long: tarfile writes a pax header
    info.size = 6
    info.mtime = EPOCH
    info.pax_headers = {"path": f"../../{MARKER}-pax"}
    return zstd(after_good(ctx, Raw.from_tarinfo(info, b"owned\n", tarfile.PAX_FORMAT)))


def _gnu(ctx: Ctx) -> bytes:
    info = tarfile.TarInfo(f"evidence/{'g' * 120}/../../../{MARKER}-gnu")
    info.size = 6
    info.mtime = EPOCH
    return zstd(after_good(ctx, Raw.from_tarinfo(info, b"owned\n", tarfile.GNU_FORMAT)))


def _bad_utf8_name(ctx: Ctx) -> bytes:
    return zstd(after_good(ctx, Raw(header_bytes(b"evidence/\xff\xfe\xc0\xaf.json", 2), b"{}")))


def _duplicate(ctx: Ctx) -> bytes:
    return zstd(after_good(ctx, Raw.regular(*GOOD[1])))


def _duplicate_manifest(ctx: Ctx) -> bytes:
    return zstd(after_good(ctx, Raw.regular(layout.MANIFEST, b"{}")))


def _unlisted(ctx: Ctx) -> bytes:
    return zstd(after_good(ctx, Raw.regular("evidence/extra.json", b"{}")))


def _listed_twice(ctx: Ctx) -> bytes:
    obj = manifest_for(ctx.key, GOOD, created=CREATED, expires=EXPIRES, images=()).to_obj()
    obj["members"] = [obj["members"][0], *obj["members"]]
    return zstd(signed_raw_manifest(ctx, bytes(rfc8785.dumps(obj)), [GOOD[0], *GOOD]))


def _huge_manifest_header(ctx: Ctx) -> bytes:
    # manifest.json's header declares 8 GiB - 1; the data is not there.
    return zstd(
        tar_bytes([Raw(tarformat.encode_header(layout.MANIFEST, HUGE_TAR_SIZE, EPOCH), b"")])
    )


def _huge_member_header(ctx: Ctx) -> bytes:
    obj = manifest_for(ctx.key, GOOD, created=CREATED, expires=EXPIRES, images=()).to_obj()
    obj["members"].append(
        {"path": "evidence/zz-huge.bin", "sha256": "0" * 64, "size": HUGE_TAR_SIZE}
    )
    raws = head(ctx, bytes(rfc8785.dumps(obj))) + regular(GOOD)
    raws.append(Raw(tarformat.encode_header("evidence/zz-huge.bin", HUGE_TAR_SIZE, EPOCH), b""))
    return zstd(tar_bytes(raws))


def _manifest_not_first(ctx: Ctx) -> bytes:
    return zstd(tar_bytes(regular(GOOD) + head(ctx, manifest_bytes(ctx, GOOD))))


def _untrusted(ctx: Ctx) -> bytes:
    m = manifest_for(ctx.attacker, GOOD, created=CREATED, expires=EXPIRES, images=()).to_json()
    return zstd(tar_bytes(signed_head(ctx.attacker, m) + regular(GOOD)))


def _manifest_deep(ctx: Ctx) -> bytes:
    m = b'{"images":' + deep_json(DEEP) + b"}"
    return zstd(signed_raw_manifest(ctx, m, []))


def _manifest_huge_int(ctx: Ctx) -> bytes:
    m = manifest_bytes(ctx, GOOD).replace(b'"sequence":1,', b'"sequence":1' + b"0" * 400 + b",")
    return zstd(signed_raw_manifest(ctx, m, GOOD))


def _manifest_bad_utf8(ctx: Ctx) -> bytes:
    m = manifest_bytes(ctx, GOOD).replace(b'"tool_version":"0.1.0"', b'"tool_version":"0.1.\xff"')
    return zstd(signed_raw_manifest(ctx, m, GOOD))


def _with_member(path: str, data: bytes | Callable[[], bytes]) -> Callable[[Ctx], bytes]:
    """A correctly signed bundle that carries (and lists) ``path`` with ``data``."""

    def build(ctx: Ctx) -> bytes:
        content = data if isinstance(data, bytes) else data()
        members = sorted([*(m for m in GOOD if m[0] != path), (path, content)])
        return zstd(tar_bytes(head(ctx, manifest_bytes(ctx, members)) + regular(members)))

    return build


def _checkpoint_10mb() -> bytes:
    # Valid-looking text, then 10 MiB of two-byte extension lines (each becomes a Python
    # string when the note is split), then one signature line that cannot verify.
    text = b"rekor.sigstore.dev - 1193050959916656506\n42\n" + b"A" * 43 + b"=\n"
    line = b"ab\n"
    body = line * ((CHECKPOINT_SIZE - len(text) - 64) // len(line))
    sig = "\u2014 rekor.sigstore.dev wNI9ajBFAiEA\n".encode()
    return text + body + b"\n" + sig


def _streamed_good(ctx: Ctx) -> bytes:
    cobj = zstandard.ZstdCompressor(
        level=3, write_checksum=True, write_content_size=False, threads=0
    ).compressobj()
    return cobj.compress(good_tar(ctx)) + cobj.flush()


def _big_window(ctx: Ctx) -> bytes:
    return with_header(_streamed_good(ctx), window=16 << 3)  # 2^(10+16) = 64 MiB


def _dictionary(ctx: Ctx) -> bytes:
    return with_header(_streamed_good(ctx), dict_id=7)


def _cut(fraction: float) -> Callable[[Ctx], bytes]:
    def build(ctx: Ctx) -> bytes:
        whole = _control(ctx)
        return whole[: int(len(whole) * fraction)]

    return build


def _tar_cut_in_header(ctx: Ctx) -> bytes:
    tar = good_tar(ctx)
    third = sum(len(r.encode()) for r in head(ctx, manifest_bytes(ctx, GOOD)))
    return zstd(tar[: third + 200])


def _tar_cut_in_data(ctx: Ctx) -> bytes:
    tar = good_tar(ctx)
    third = sum(len(r.encode()) for r in head(ctx, manifest_bytes(ctx, GOOD)))
    return zstd(tar[: third + 512 + len(GOOD[0][1]) // 2])


def _tar_no_end(ctx: Ctx) -> bytes:
    return zstd(b"".join(r.encode() for r in head(ctx, manifest_bytes(ctx, GOOD)) + regular(GOOD)))


def _tar_after_end(ctx: Ctx) -> bytes:
    tar = bytearray(good_tar(ctx))
    tar[-100:-80] = b"hidden unsigned data"
    return zstd(bytes(tar))


def _gzip(ctx: Ctx) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as g:
        g.write(good_tar(ctx))
    return out.getvalue()


def _rekor_member(name: str) -> str:
    return f"tlog/{REKOR_LOG_ID}/{name}"


F = "verification failed: 1 bundle format"
L = "verification failed: 1 bundle limits"
M = "verification failed: 3 bundle members"
S = "verification failed: 2 bundle signature"
EV = "verification failed: evidence format"
CP = "verification failed: 4 checkpoint"
NOT_ZSTD = E(2, "error: not a zstd-compressed evidence bundle")
ONLY_REGULAR = "only regular files are allowed"

# Regressions: these five cases were bugs found by this corpus (checkpoint memory, invalid
# UTF-8 and non-hex log ids in checkpoint paths, deep JSON in a carried keyring or trusted
# root); they are fixed and now expect the typed refusal.

CASES: tuple[Case, ...] = (
    Case(
        "control-valid",
        "nothing: a well-formed bundle signed by the test exporter (proves the harness "
        "trusts the right key, so every refusal below is the reader's)",
        E(0, "PASS"),
        UNVERIFIED,
        _control,
    ),
    # -- names ------------------------------------------------------------------------
    Case(
        "path-traversal-dotdot",
        f"member `../{MARKER}-1` after a correctly signed head",
        E(1, F, f"'../{MARKER}-1' refused", "(path traversal)"),
        UNVERIFIED,
        _member(f"../{MARKER}-1"),
    ),
    Case(
        "path-traversal-nested",
        f"member `a/../../{MARKER}-2` (traversal behind a real segment)",
        E(1, F, f"'a/../../{MARKER}-2' refused", "(path traversal)"),
        UNVERIFIED,
        _member(f"a/../../{MARKER}-2"),
    ),
    Case(
        "path-traversal-deep",
        f"member `../../../../../../../../../../tmp/{MARKER}-3` (reaches /tmp from any depth)",
        E(1, F, "(path traversal)"),
        UNVERIFIED,
        _member(f"../../../../../../../../../../tmp/{MARKER}-3"),
    ),
    Case(
        "absolute-path",
        f"member `/tmp/{MARKER}-abs`",
        E(1, F, f"'/tmp/{MARKER}-abs' refused: absolute path"),
        UNVERIFIED,
        _member(f"/tmp/{MARKER}-abs"),
    ),
    Case(
        "member-name-invalid-utf8",
        "member name with bytes `ff fe c0 af` (not UTF-8, not ASCII)",
        E(1, F, "name is not ASCII"),
        UNVERIFIED,
        _bad_utf8_name,
    ),
    # -- member types -----------------------------------------------------------------
    Case(
        "symlink",
        f"symlink `evidence/out -> /tmp`, then `evidence/out/{MARKER}-symlink` written through it",
        E(1, F, "'evidence/out' is a symbolic link", ONLY_REGULAR),
        UNVERIFIED,
        _symlink,
    ),
    Case(
        "hardlink",
        "hard link `evidence/passwd` to `/etc/passwd`",
        E(1, F, "'evidence/passwd' is a hard link", ONLY_REGULAR),
        UNVERIFIED,
        _special(lambda: special("evidence/passwd", tarfile.LNKTYPE, linkname="/etc/passwd")),
    ),
    Case(
        "char-device",
        "character device `evidence/null` (1, 3)",
        E(1, F, "is a character device", ONLY_REGULAR),
        UNVERIFIED,
        _special(lambda: special("evidence/null", tarfile.CHRTYPE, dev=(1, 3))),
    ),
    Case(
        "block-device",
        "block device `evidence/sda` (8, 0)",
        E(1, F, "is a block device", ONLY_REGULAR),
        UNVERIFIED,
        _special(lambda: special("evidence/sda", tarfile.BLKTYPE, dev=(8, 0))),
    ),
    Case(
        "fifo",
        "FIFO `evidence/fifo` (an extractor that opens it blocks forever)",
        E(1, F, "is a FIFO", ONLY_REGULAR),
        UNVERIFIED,
        _special(lambda: special("evidence/fifo", tarfile.FIFOTYPE)),
    ),
    Case(
        "directory-member",
        "directory entry `evidence/dir/`",
        E(1, F, "is a directory", ONLY_REGULAR),
        UNVERIFIED,
        _special(lambda: special("evidence/dir", tarfile.DIRTYPE)),
    ),
    Case(
        "pax-rename",
        f"pax extended header renaming the next member to `../../{MARKER}-pax`",
        E(1, F, "is a pax extended header"),
        UNVERIFIED,
        _pax,
    ),
    Case(
        "gnu-longname",
        "GNU long-name header (GNU magic) carrying a traversal",
        E(1, F, "not a POSIX ustar header"),
        UNVERIFIED,
        _gnu,
    ),
    # -- duplicates and listing -------------------------------------------------------
    Case(
        "duplicate-member",
        "`evidence/index.json` twice in the tar, listed once (a second copy could replace "
        "the verified one)",
        E(1, M, "'evidence/index.json' appears twice"),
        UNVERIFIED,
        _duplicate,
    ),
    Case(
        "duplicate-manifest",
        "a second `manifest.json` after the members",
        E(1, M, "'manifest.json' appears twice"),
        UNVERIFIED,
        _duplicate_manifest,
    ),
    Case(
        "unlisted-member",
        "a member the signed manifest does not list",
        E(1, M, "'evidence/extra.json' is not listed in the signed manifest"),
        UNVERIFIED,
        _unlisted,
    ),
    Case(
        "manifest-lists-member-twice",
        "a signed manifest listing the same member twice",
        E(1, F, "manifest members", "is listed twice"),
        E(1, F, "manifest members", "is listed twice"),
        _listed_twice,
    ),
    Case(
        "manifest-not-first",
        "the members before the manifest (nothing may be read before the signature)",
        E(1, F, "the first member must be manifest.json"),
        E(1, F, "the first member must be manifest.json"),
        _manifest_not_first,
    ),
    Case(
        "untrusted-signer",
        "a well-formed bundle signed by a key the host does not trust",
        E(1, S, "not signed by a trusted exporter key"),
        UNVERIFIED,
        _untrusted,
    ),
    # -- sizes ------------------------------------------------------------------------
    Case(
        "tar-header-huge-manifest",
        "`manifest.json` header declaring 8 GiB - 1 (read into memory if believed)",
        E(1, L, f"manifest.json declares {HUGE_TAR_SIZE} bytes, over the limit"),
        E(1, L, f"manifest.json declares {HUGE_TAR_SIZE} bytes, over the limit"),
        _huge_manifest_header,
    ),
    Case(
        "tar-header-huge-member",
        "a member header of 8 GiB - 1, listed so by the signed manifest",
        E(1, L, f"'evidence/zz-huge.bin' is {HUGE_TAR_SIZE} bytes, over the limit"),
        UNVERIFIED,
        _huge_member_header,
    ),
    Case(
        "zstd-bomb-declared-huge",
        "zstd frame declaring 2^50 bytes of content (1 GiB of real zero blocks follow)",
        E(1, L, f"the bundle inflates to {HUGE_DECLARED} bytes, over the limit"),
        E(1, L, f"the bundle inflates to {HUGE_DECLARED} bytes, over the limit"),
        _bomb(HUGE_DECLARED),
    ),
    Case(
        "zstd-bomb-declared-ratio",
        "honest zstd frame of a correctly signed bundle whose listed 1 GiB member is zeros "
        "(33 KB file)",
        E(1, L, "over the ratio limit of 200 (zstd bomb?)"),
        E(1, L, "over the ratio limit of 200 (zstd bomb?)"),
        _bomb(None, honest=True),
    ),
    Case(
        "zstd-bomb-lying-size",
        "the same bomb declaring 10 MiB: passes the up-front check, must stop while inflating",
        E(1, L, f"the bundle inflates past {LIE_SIZE} bytes (its declared size)"),
        UNVERIFIED,
        _bomb(LIE_SIZE),
    ),
    Case(
        "zstd-bomb-no-size",
        "the same bomb without a declared content size",
        E(1, F, "the zstd frame does not declare its content size"),
        E(1, F, "the zstd frame does not declare its content size"),
        _bomb(None),
    ),
    Case(
        "zstd-window-64mib",
        "frame header asking for a 64 MiB window (decoder memory)",
        E(1, L, "zstd window of 67108864 bytes exceeds 33554432"),
        E(1, L, "zstd window of 67108864 bytes exceeds 33554432"),
        _big_window,
    ),
    Case(
        "zstd-dictionary",
        "frame header naming dictionary 7",
        E(1, F, "the zstd frame needs a dictionary"),
        E(1, F, "the zstd frame needs a dictionary"),
        _dictionary,
    ),
    Case(
        "zstd-no-checksum",
        "frame without the content checksum",
        E(1, F, "the zstd frame carries no content checksum"),
        E(1, F, "the zstd frame carries no content checksum"),
        lambda ctx: zstd(good_tar(ctx), checksum=False),
    ),
    # -- truncation and trailing data -------------------------------------------------
    Case(
        "truncated-zstd-header",
        "the first 5 bytes of a valid bundle (frame header cut)",
        E(2, "error: unreadable zstd frame header (truncated file?)"),
        E(2, "error: unreadable zstd frame header (truncated file?)"),
        lambda ctx: _control(ctx)[:5],
    ),
    Case(
        "truncated-zstd-mid-frame",
        "a valid bundle cut in the middle of its zstd frame",
        E(1, F, "compressed stream ends early (truncated file?)"),
        E(1, F, "compressed stream ends early (truncated file?)"),
        _cut(0.5),
    ),
    Case(
        "truncated-tar-mid-header",
        "a complete zstd frame whose tar stops 200 bytes into the third header",
        E(1, F, "tar stream ends inside the tar header at offset 3072 (truncated)"),
        UNVERIFIED,
        _tar_cut_in_header,
    ),
    Case(
        "truncated-tar-mid-data",
        "a complete zstd frame whose tar stops in the middle of a member's data",
        E(1, F, "tar stream ends inside member 'blobs/sha256/", "(truncated)"),
        UNVERIFIED,
        _tar_cut_in_data,
    ),
    Case(
        "tar-no-end-marker",
        "the tar stops right after the last member (no end-of-archive blocks)",
        E(1, F, "tar stream ends inside the tar header at offset", "(truncated)"),
        UNVERIFIED,
        _tar_no_end,
    ),
    Case(
        "tar-data-after-end",
        "unsigned bytes hidden in the tar record padding after the end-of-archive marker",
        E(1, F, "data after the tar end-of-archive marker"),
        UNVERIFIED,
        _tar_after_end,
    ),
    Case(
        "trailing-garbage",
        "bytes after the zstd frame",
        E(1, F, "bytes follow the zstd frame (one frame only)"),
        UNVERIFIED,
        lambda ctx: _control(ctx) + b"TRAILING GARBAGE\n" * 4,
    ),
    Case(
        "trailing-second-frame",
        "a second, valid zstd frame after the first (other readers concatenate frames)",
        E(1, F, "bytes follow the zstd frame (one frame only)"),
        UNVERIFIED,
        lambda ctx: _control(ctx) + zstd(b"evil" * 1000),
    ),
    # -- JSON -------------------------------------------------------------------------
    Case(
        "manifest-deep-json",
        f"signed manifest with arrays nested {DEEP} deep",
        E(1, F, "manifest.json: JSON nested too deeply"),
        E(1, F, "manifest.json: JSON nested too deeply"),
        _manifest_deep,
    ),
    Case(
        "manifest-huge-int",
        "signed manifest with `sequence` = 10^400",
        E(1, F, "manifest sequence: 10000000000", "is outside [1, 2^53-1]"),
        E(1, F, "manifest sequence: 10000000000", "is outside [1, 2^53-1]"),
        _manifest_huge_int,
    ),
    Case(
        "manifest-invalid-utf8",
        "signed manifest with byte `ff` inside a string",
        E(1, F, "manifest.json: not valid JSON", "can't decode byte 0xff"),
        E(1, F, "manifest.json: not valid JSON", "can't decode byte 0xff"),
        _manifest_bad_utf8,
    ),
    Case(
        "evidence-deep-json",
        f"signed `evidence/index.json` with arrays nested {DEEP} deep",
        E(1, EV, "evidence index: JSON nested too deeply"),
        UNVERIFIED,
        _with_member(layout.EVIDENCE, b'{"attestations":' + deep_json(DEEP) + b',"version":1}'),
    ),
    Case(
        "evidence-huge-int",
        "signed `evidence/index.json` with a Rekor log index of 10^400",
        E(1, EV, "completion.logIndex: out of int64 range"),
        UNVERIFIED,
        _with_member(
            layout.EVIDENCE,
            b'{"attestations":[],"tlogCompletions":[{"logId":"00","logIndex":1'
            + b"0" * 400
            + b',"path":"evidence/x"}],"version":1}',
        ),
    ),
    Case(
        "evidence-int-5000-digits",
        "signed `evidence/index.json` with a 5001-digit integer (Python refuses to convert "
        "more than 4300 digits)",
        E(1, EV, "evidence index: not valid JSON", "4300 digits"),
        UNVERIFIED,
        _with_member(layout.EVIDENCE, b'{"attestations":[],"version":1' + b"0" * 5000 + b"}"),
    ),
    # -- checkpoints and carried keys -------------------------------------------------
    Case(
        "checkpoint-10mb",
        "signed 10 MiB checkpoint of rekor.sigstore.dev: 3.5 million two-byte lines "
        "(each a Python string once the note is split)",
        E(1, CP, "more than 65536"),
        UNVERIFIED,
        _with_member(_rekor_member("checkpoint.txt"), _checkpoint_10mb),
    ),
    Case(
        "checkpoint-invalid-utf8",
        "signed checkpoint of rekor.sigstore.dev containing byte `ff`",
        E(1, CP, "not valid UTF-8"),
        UNVERIFIED,
        _with_member(
            _rekor_member("checkpoint.txt"),
            b"rekor.sigstore.dev - 1\n42\n\xff\n\n\xe2\x80\x94 rekor.sigstore.dev wNI9ajBF\n",
        ),
    ),
    Case(
        "checkpoint-log-id-not-hex",
        "signed checkpoint at `tlog/not-a-log-id/checkpoint.txt` (the path rules allow any "
        "segment under `tlog/`)",
        E(1, CP, "is not a log id"),
        UNVERIFIED,
        _with_member("tlog/not-a-log-id/checkpoint.txt", b"x\n"),
    ),
    Case(
        "bundle-keyring-deep-json",
        f"signed `keys/publisher-keyring.json` nested {DEEP} deep",
        E(2, "error: keyring"),
        UNVERIFIED,
        _with_member(layout.KEYRING, b'{"keys":' + deep_json(DEEP) + b"}"),
        ("--trust-bundle-keys",),
    ),
    Case(
        "bundle-trusted-root-deep-json",
        f"signed `keys/trusted_root.json` nested {DEEP} deep",
        E(0, "trusted root is unusable"),
        UNVERIFIED,
        _with_member(layout.TRUSTED_ROOT, b'{"tlogs":' + deep_json(DEEP) + b"}"),
        ("--trust-bundle-keys",),
    ),
    # -- not a bundle at all ----------------------------------------------------------
    Case("empty", "an empty file", NOT_ZSTD, NOT_ZSTD, lambda ctx: b""),
    Case(
        "not-zstd",
        "a text file",
        NOT_ZSTD,
        NOT_ZSTD,
        lambda ctx: b"this is not an evidence bundle\n" * 10,
    ),
    Case("plain-tar", "the control bundle's tar, uncompressed", NOT_ZSTD, NOT_ZSTD, good_tar),
    Case("gzip", "the control bundle's tar, gzip-compressed", NOT_ZSTD, NOT_ZSTD, _gzip),
    Case(
        "directory",
        "a directory where the bundle file should be",
        E(2, "error: cannot read bundle", "directory.dhi.tar.zst"),
        E(2, "error: cannot open the bundle", "Is a directory"),
        None,
    ),
)


# -- README ----------------------------------------------------------------------------------


def _expect_cell(e: Expect) -> str:
    words = " … ".join(w.replace("|", "\\|") for w in e.words)
    where = "stdout" if e.code == 0 else "stderr"
    cell = f"{e.code}, {where} has `{words}`"
    if e.xfail:
        cell += " **(xfail: known bug)**"
    if e.memory_xfail:
        cell += " **(memory over the bound: known bug)**"
    return cell


def readme() -> str:
    """The corpus README: every file, what it attacks, the expected answers."""
    rows = "\n".join(
        f"| `{c.file}`{'/' if c.build is None else ''} | {c.attack}"
        + (f" (`verify {' '.join(c.args)}`)" if c.args else "")
        + f" | {_expect_cell(c.verify)} | {_expect_cell(c.inspect)} |"
        for c in CASES
    )
    bugs = "\n".join(
        f"- `{c.file}` ({cmd}): {bug}"
        for c in CASES
        for cmd, e in (("verify", c.verify), ("inspect", c.inspect))
        for bug in (e.xfail, e.memory_xfail)
        if bug
    )
    return f"""# Adversarial corpus

Hostile inputs for `dhi-offline verify` and `dhi-offline inspect`, one attack per file.
Written by `python -m tests.adversarial.generate tests/adversarial/corpus` (do not edit by
hand: the table below and `test_corpus.py` come from `CASES` in `generate.py`) and run by
`tests/adversarial/test_corpus.py`; results are summarised in `docs/security.md`.

Every file is run as

```sh
python -m dhi_offline verify FILE --trust-exporter keys/exporter.pub \\
    --trust-publisher keys/publisher.pub \\
    --trusted-root dhi_offline/data/trusted_root/production.json \\
    --archive SANDBOX/archive [extra arguments in the table]
python -m dhi_offline inspect FILE
```

in a subprocess whose working directory, `HOME`, `TMPDIR` and `DHI_OFFLINE_*`
directories are inside a fresh sandbox, under a 1 GiB address-space limit. Each must exit
with the code below, print exactly one line on stderr containing the words below (for
exit 0: nothing on stderr, the words on stdout), never a traceback, write nothing
outside the sandbox (nothing named `{MARKER}*` anywhere) and stay under the memory bound
of `test_corpus.py`.

## Keys

`keys/` holds **test keys, published on purpose; never trust them anywhere else**:

- `exporter.pem`/`exporter.pub`: the trusted test exporter; bundles that must reach
  the checks after the signature are signed with it, so their refusal is the reader's,
  not the signature's;
- `attacker.pem`/`attacker.pub`: an exporter the host does not trust (`untrusted-signer`);
- `publisher.pub`: a publisher key to trust (no corpus file needs its private half).

They were generated once; the generator reuses them, so the corpus regenerates
byte for byte (same zstandard/libzstd and cryptography versions).

## Files

"verify" and "inspect": exit code, and words the output must contain.
`inspect` reads only `manifest.json` (unverified), so attacks placed after it are not
its concern: it must then succeed and label its output UNVERIFIED.

| file | attack | verify | inspect |
|---|---|---|---|
{rows}

## Known bugs (cases marked xfail)

{bugs or "None."}
"""


# -- main ------------------------------------------------------------------------------------


def generate(out: Path, *, keys: Path = KEYS) -> list[Path]:
    """Write every case, the keys and README.md into ``out``; return the files written."""
    ensure_keys(keys)
    ctx = Ctx.load(keys)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != CORPUS.resolve():
        shutil.copytree(keys, out / "keys", dirs_exist_ok=True)
    written: list[Path] = []
    for case in CASES:
        path = out / case.file
        if case.build is None:
            path.mkdir(exist_ok=True)
            note = path / "README"
            note.write_text("A directory where a bundle file is expected (adversarial corpus).\n")
            written.append(note)
            continue
        path.write_bytes(case.build(ctx))
        written.append(path)
    (out / "README.md").write_text(readme())
    written.append(out / "README.md")
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.adversarial.generate OUTDIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m tests.adversarial.generate OUTDIR", file=sys.stderr)
        return 2
    files = generate(Path(args[0]))
    total = sum(p.stat().st_size for p in files)
    print(f"wrote {len(files)} files ({total} bytes) to {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
