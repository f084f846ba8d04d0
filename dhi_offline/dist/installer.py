"""``install.sh``: the installer's POSIX shell script, run on the air-gapped host.

In order, and refusing at the first problem: ``sha256sum -c SHA256SUMS``; no file under
``wheels/`` that ``SHA256SUMS`` does not list (pip would pick it up); with ``--key``, the
signature (``openssl dgst -sha256 -verify``); a CPython of exactly the wheels' version on
a machine of their architecture with a new enough glibc; a fresh venv; ``pip install
--no-index`` from ``wheels/`` only (pip's configuration and ``PIP_*`` variables ignored,
so no other wheel or index can be used); a link in the bin directory.
"""

from __future__ import annotations

_TEMPLATE = r"""#!/bin/sh
# Install dhi-offline @VERSION@ from the wheels next to this script, with no network.
# The wheels are for CPython @PYTHON@ on @PLATFORM@ (glibc @GLIBC@ or later).
#
#   sh install.sh [--prefix DIR] [--bindir DIR] [--key EXPORTER.pub]
#
# PREFIX (default $HOME/.local/share/dhi-offline) gets the venv, PREFIX/venv;
# BINDIR (default $HOME/.local/bin) the dhi-offline command; PYTHON names the
# interpreter (default: python@PYTHON@, then python3). Check the signature first, with
# your trusted copy of the exporter key (never one from this tarball):
#   openssl dgst -sha256 -verify exporter.pub -signature SHA256SUMS.sig SHA256SUMS
# or give that key as --key.
set -eu

VERSION='@VERSION@'
WANT_PYTHON='@PYTHON@'
PLATFORM='@PLATFORM@'

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
absolute() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$(pwd)" "$1" ;; esac; }

prefix=${PREFIX:-}
bindir=${BINDIR:-}
key=''
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --bindir) [ $# -ge 2 ] || die "--bindir needs a directory"; bindir=$2; shift 2 ;;
        --bindir=*) bindir=${1#*=}; shift ;;
        --key) [ $# -ge 2 ] || die "--key needs a public key file"; key=$2; shift 2 ;;
        --key=*) key=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see: sh install.sh --help)" ;;
    esac
done
if [ -z "$prefix" ] || [ -z "$bindir" ]; then
    [ -n "${HOME:-}" ] || die "HOME is not set: give --prefix and --bindir"
fi
prefix=$(absolute "${prefix:-$HOME/.local/share/dhi-offline}")
bindir=$(absolute "${bindir:-$HOME/.local/bin}")
[ -z "$key" ] || key=$(absolute "$key")
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || die "cannot find the directory of $0"
cd "$here"

# 1. Every file as listed, and nothing under wheels/ that is not listed.
command -v sha256sum >/dev/null 2>&1 \
    || die "sha256sum (GNU coreutils) not found: cannot check the files"
[ -f SHA256SUMS ] || die "no SHA256SUMS next to install.sh: refusing to install"
if ! sha256sum -c --quiet SHA256SUMS >&2; then
    die "SHA256SUMS does not match the files above: refusing to install" \
        "(the tarball was changed or damaged)"
fi
for f in wheels/* wheels/.[!.]* wheels/..?*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    { [ -f "$f" ] && [ ! -L "$f" ]; } || die "$f is not a regular file: refusing to install"
    cut -c67- SHA256SUMS | grep -qxF -- "$f" \
        || die "$f is not listed in SHA256SUMS: refusing to install"
done
say "checked $(wc -l < SHA256SUMS | tr -d ' ') files against SHA256SUMS"
if [ -n "$key" ]; then
    command -v openssl >/dev/null 2>&1 \
        || die "openssl not found: cannot check the signature with --key"
    openssl dgst -sha256 -verify "$key" -signature SHA256SUMS.sig SHA256SUMS >/dev/null 2>&1 \
        || die "SHA256SUMS.sig does not verify with $key: refusing to install"
    say "SHA256SUMS.sig verified with $key"
else
    say "signature not checked here (no --key): check it with openssl and your trusted exporter.pub"
fi

# 2. A CPython the wheels are for, on a machine they run on.
if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
    command -v "$python" >/dev/null 2>&1 || die "PYTHON=$python: not found"
else
    python=''
    for candidate in "python$WANT_PYTHON" python3; do
        if command -v "$candidate" >/dev/null 2>&1; then
            python=$(command -v "$candidate")
            break
        fi
    done
    [ -n "$python" ] \
        || die "neither python$WANT_PYTHON nor python3 found:" \
            "install CPython $WANT_PYTHON, or set PYTHON"
fi
"$python" - "$WANT_PYTHON" "$PLATFORM" <<'EOF' || exit 1
import os, platform, sys
want, tag = sys.argv[1], sys.argv[2]
parts = tag.split("_")
need, arch = (int(parts[1]), int(parts[2])), "_".join(parts[3:])
have = "%d.%d" % sys.version_info[:2]
problems = []
impl = getattr(getattr(sys, "implementation", None), "name", "unknown")
if impl != "cpython":
    problems.append("it is %s, not CPython" % impl)
if have != want:
    problems.append("it is Python %s, not %s" % (have, want))
if platform.machine() != arch:
    problems.append("this machine is %s, not %s" % (platform.machine(), arch))
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
except (AttributeError, OSError, ValueError):
    libc = ""
if not libc.startswith("glibc "):
    problems.append("no glibc found (musl?), the wheels need glibc %d.%d" % need)
elif tuple(int(x) for x in libc.split()[1].split(".")[:2]) < need:
    problems.append("glibc is %s, the wheels need %d.%d or later" % ((libc.split()[1],) + need))
if problems:
    sys.stderr.write(
        "install.sh: these wheels are for CPython %s on %s, and %s does not match: %s.\n"
        "install.sh: set PYTHON to a python%s, or build the tarball for this host "
        "(dhi-offline dist build --platform ... --python ...).\n"
        % (want, tag, sys.executable, "; ".join(problems), want)
    )
    sys.exit(1)
print("install.sh: using %s (CPython %s, %s, %s)"
      % (sys.executable, have, libc, platform.machine()))
EOF

# 3. A fresh venv with exactly these wheels: pip's configuration files and PIP_*
# variables are ignored, so no other index or wheel directory can take part.
venv=$prefix/venv
mkdir -p "$prefix"
"$python" -m venv --clear "$venv" \
    || die "$python could not create a venv at $venv" \
        "(Debian/Ubuntu: apt install python$WANT_PYTHON-venv)"
say "created the venv $venv"
PIP_CONFIG_FILE=/dev/null "$venv/bin/python" -m pip --isolated install --quiet \
    --no-index --find-links "$here/wheels" --only-binary=:all: --no-cache-dir \
    --disable-pip-version-check "dhi-offline==$VERSION" \
    || die "pip could not install dhi-offline $VERSION from $here/wheels (see pip's message above)"
say "installed dhi-offline $VERSION and its dependencies from $here/wheels (no index, no network)"

# 4. The command.
mkdir -p "$bindir"
if [ -e "$bindir/dhi-offline" ] && [ ! -L "$bindir/dhi-offline" ]; then
    die "$bindir/dhi-offline exists and is not a link: remove it, or give --bindir"
fi
ln -sf "$venv/bin/dhi-offline" "$bindir/dhi-offline"
say "linked $bindir/dhi-offline -> $venv/bin/dhi-offline"
say "$("$bindir/dhi-offline" --version)"
case ":${PATH:-}:" in
    *":$bindir:"*) ;;
    *) say "note: $bindir is not on PATH; add it, or run $bindir/dhi-offline" ;;
esac
"""


def install_script(*, version: str, python: str, platform: str) -> bytes:
    """``install.sh`` for dhi-offline ``version``, wheels for CPython ``python`` (``3.12``)
    on ``platform`` (a ``manylinux_2_<minor>_<arch>`` tag)."""
    glibc = ".".join(platform.split("_")[1:3])
    return (
        _TEMPLATE.replace("@VERSION@", version)
        .replace("@PYTHON@", python)
        .replace("@PLATFORM@", platform)
        .replace("@GLIBC@", glibc)
        .encode()
    )
