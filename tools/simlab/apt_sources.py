"""The Debian mirror this machine's apt already uses, for the images simlab and the Molecule tests build.

`LABKIT_DEBIAN_MIRROR` wins when it is set. Otherwise the mirror is the first enabled `deb` entry of
apt's sources (`/etc/apt/sources.list`, then `sources.list.d/*.list` and `*.sources` by name, the
order apt reads them) that serves Debian's main archive for the suite: the suite itself (not
-security, -updates or -backports), the `main` component, this machine's architecture, a URI an
image build can fetch from (http, https, file, or the first mirror a `mirror+file:` list names;
never `cdrom:`), and no sign of a third-party repository: a Signed-By that is not one of Debian's
archive keyrings, or a Release file in apt's lists whose Origin is not Debian. An entry apt's lists
confirm as Debian's is preferred to one they say nothing about.

There is no built-in mirror: without such an entry the error names the variable to set.

    python3 tools/simlab/apt_sources.py bookworm    # prints the mirror URL

Standard library only, so tests/podman/build_image.sh runs it with the system python3.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "LABKIT_DEBIAN_MIRROR"
FETCHABLE_SCHEMES = ("http", "https", "file")
# Debian's own keyrings: /usr/share/keyrings/debian-archive-keyring.gpg, debian-archive-bookworm-*.
DEBIAN_KEYRING_PREFIX = "debian-archive-"
_DPKG_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386", "ppc64le": "ppc64el"}
_ONE_LINE = re.compile(
    r"^(?P<type>deb|deb-src)\s+(?:\[(?P<options>[^\]]*)\]\s*)?"
    r"(?P<uri>cdrom:\[[^\]]*\]\S*|\S+)\s+(?P<suite>\S+)(?P<components>.*)$"
)
_URI = re.compile(r"^[a-z][a-z0-9+.-]*:\S+$", re.I)
# Characters apt quotes in the names of the files under /var/lib/apt/lists.
_LIST_QUOTED = set('\\|{}[]<>"^~_=!@#$%^&*')


class MirrorError(Exception):
    """No usable Debian mirror: the message says which variable to set."""


@dataclass(frozen=True)
class Entry:
    """One (type, URI, suite) of an apt source, as apt expands a line or a deb822 stanza."""

    type: str
    uri: str
    suite: str
    components: tuple[str, ...]
    archs: tuple[str, ...] = ()
    signed_by: tuple[str, ...] = ()
    enabled: bool = True
    where: str = ""


def parse_one_line(text: str, where: str = "sources.list") -> list[Entry]:
    """`deb [options] URI suite components` lines; `#` starts a comment, so commented entries are skipped."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        match = _ONE_LINE.match(raw.split("#", 1)[0].strip())
        if not match:
            continue
        options = {}
        for token in (match["options"] or "").split():
            key, _, value = token.partition("=")
            options[key.lower()] = value
        entries.append(
            Entry(
                type=match["type"],
                uri=match["uri"],
                suite=match["suite"],
                components=tuple(match["components"].split()),
                archs=tuple(filter(None, options.get("arch", "").split(","))),
                signed_by=tuple(filter(None, options.get("signed-by", "").split(","))),
                where=f"{where}:{number}",
            )
        )
    return entries


def _stanzas(text: str) -> list[tuple[int, dict[str, str]]]:
    """deb822 paragraphs as (first line, {lower-case field: value}); `#` lines are comments."""
    stanzas: list[tuple[int, dict[str, str]]] = []
    fields: dict[str, str] = {}
    key = ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            fields, key = {}, ""
            continue
        if line[0] in " \t":
            if key:
                fields[key] += "\n" + line.strip()
            continue
        if not fields:
            stanzas.append((number, fields))
        key, _, value = line.partition(":")
        key = key.strip().lower()
        fields[key] = value.strip()
    return stanzas


def parse_deb822(text: str, where: str = "debian.sources") -> list[Entry]:
    """deb822 stanzas (Types, URIs, Suites, Components, Architectures, Signed-By, Enabled)."""
    entries = []
    for number, fields in _stanzas(text):
        signed = fields.get("signed-by", "")
        # An embedded key block is one keyring (never Debian's own file).
        signed_by = (signed,) if "BEGIN PGP" in signed else tuple(signed.split())
        enabled = fields.get("enabled", "yes").strip().lower() not in ("no", "false", "0")
        for type_, uri, suite in itertools.product(
            fields.get("types", "").split(), fields.get("uris", "").split(), fields.get("suites", "").split()
        ):
            entries.append(
                Entry(
                    type=type_,
                    uri=uri,
                    suite=suite,
                    components=tuple(fields.get("components", "").split()),
                    archs=tuple(fields.get("architectures", "").split()),
                    signed_by=signed_by,
                    enabled=enabled,
                    where=f"{where}:{number}",
                )
            )
    return entries


def source_files(root: Path = Path("/")) -> list[Path]:
    etc = root / "etc" / "apt"
    parts = etc / "sources.list.d"
    found = sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources")) if parts.is_dir() else []
    return [p for p in [etc / "sources.list", *found] if p.is_file()]


def read_entries(root: Path = Path("/")) -> list[Entry]:
    entries = []
    for path in source_files(root):
        parse = parse_deb822 if path.suffix == ".sources" else parse_one_line
        entries += parse(path.read_text(errors="replace"), where=str(path))
    return entries


def _fetchable(uri: str, root: Path) -> str | None:
    """The URI an image build fetches from, or None for one it cannot use (cdrom:, other methods)."""
    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    if scheme in FETCHABLE_SCHEMES:
        return uri
    if scheme == "mirror+file":  # apt's mirror method: a local file lists the mirrors, first one first
        listing = root / rest.lstrip("/")
        if listing.is_file():
            for line in listing.read_text(errors="replace").splitlines():
                words = line.split("#", 1)[0].split()
                if words and words[0].partition(":")[0].lower() in FETCHABLE_SCHEMES:
                    return words[0]
    return None


def _list_name(uri: str) -> str:
    """The name apt gives a URI's files under /var/lib/apt/lists (its URItoFileName)."""
    rest = uri.partition(":")[2].removeprefix("//")
    host, slash, path = rest.partition("/")
    rest = host.rpartition("@")[2] + slash + path  # no user:password
    quoted = "".join(f"%{ord(c):02x}" if c in _LIST_QUOTED or not 32 < ord(c) < 127 else c for c in rest)
    return quoted.replace("/", "_")


def release_origin(uri: str, suite: str, root: Path = Path("/")) -> str | None:
    """The Origin of the suite's Release file in apt's lists, or None when apt has not fetched it."""
    stem = _list_name(f"{uri.rstrip('/')}/dists/{suite}/")
    for name in ("InRelease", "Release"):
        path = root / "var" / "lib" / "apt" / "lists" / (stem + name)
        if path.is_file():
            match = re.search(r"^Origin:\s*(.*?)\s*$", path.read_text(errors="replace"), re.M)
            return match[1] if match else ""
    return None


def _serves_debian_main(entry: Entry, suite: str, arch: str | None) -> bool:
    return (
        entry.enabled
        and entry.type == "deb"
        and entry.suite == suite
        and "main" in entry.components
        and not (arch and entry.archs and arch not in entry.archs)
        and all(Path(key).name.startswith(DEBIAN_KEYRING_PREFIX) for key in entry.signed_by)
    )


def mirror_from_entries(
    entries: list[Entry], suite: str, root: Path = Path("/"), arch: str | None = None
) -> str | None:
    confirmed, unconfirmed = [], []
    for entry in entries:
        if not _serves_debian_main(entry, suite, arch):
            continue
        uri = _fetchable(entry.uri, root)
        if uri is None:
            continue
        origin = release_origin(entry.uri, suite, root)
        if origin == "Debian":
            confirmed.append(uri)
        elif origin is None:
            unconfirmed.append(uri)
    chosen = [*confirmed, *unconfirmed]
    return chosen[0].rstrip("/") if chosen else None


def debian_mirror(
    suite: str, environ: Mapping[str, str] | None = None, root: Path = Path("/"), arch: str | None = None
) -> str:
    """The mirror to build `suite` images from: LABKIT_DEBIAN_MIRROR, else the one apt uses here."""
    override = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if override:
        if not (_URI.match(override) and override.isprintable()):
            raise MirrorError(f"{ENV_VAR}={override!r} is not a URI; set it to a Debian mirror's URL")
        return override.rstrip("/")
    arch = arch or _DPKG_ARCH.get(platform.machine())
    mirror = mirror_from_entries(read_entries(root), suite, root, arch)
    if mirror is None:
        looked = ", ".join(str(p) for p in source_files(root)) or f"no file under {root / 'etc' / 'apt'}"
        raise MirrorError(
            f"no enabled apt source serves Debian's main archive for {suite} (read: {looked}); "
            f"set {ENV_VAR} to the Debian mirror to build images from, e.g. {ENV_VAR}=http://deb.debian.org/debian"
        )
    return mirror


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="apt_sources.py", description=f"Print the Debian mirror for SUITE ({ENV_VAR}, else apt's sources)."
    )
    parser.add_argument("suite", help="the Debian suite, e.g. bookworm")
    args = parser.parse_args(argv)
    try:
        print(debian_mirror(args.suite))
    except MirrorError as err:
        print(f"apt_sources: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
