# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kernel artifact schema (docs/artifact.md), checked in one place.

An artifact is a directory with manifest.json; kernel_build's `kernel_build_artifact` fact is that
manifest plus `path` (the directory on the build host), `build_host` and `built`. Consumers call
`resolve()` (through the `kernel_artifact` filter) and get the same mapping with `files` turned into
absolute paths ('' for a file the artifact does not have).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

SCHEMA = 1
# The keys of manifest.json (schema 1), in the order docs/artifact.md describes them.
MANIFEST_KEYS = (
    "schema",
    "hash",
    "id",
    "release",
    "arch",
    "srcarch",
    "cross_compile",
    "targets",
    "image",
    "files",
    "source",
    "patches",
    "config_sha256",
    "localversion",
    "inputs",
    "built_on",
    "built_at",
    "build_seconds",
)
# What kernel_build adds to the manifest to make its kernel_build_artifact fact.
FACT_KEYS = ("path", "build_host", "built")
ARCHES = ("x86_64", "x86", "arm64", "arm", "riscv", "um")
FILES = ("image", "config", "system_map", "release", "modules", "dtbs", "overlays", "headers", "log")
REQUIRED_FILES = ("image", "config", "system_map")
_HEX = re.compile(r"^[0-9a-f]+$")
_RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*$")


class ArtifactError(ValueError):
    pass


def _inside(name, key, path):
    """The absolute path of files.<key>: a name relative to the artifact, or (an artifact resolved
    before) an absolute path inside it."""
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"files.{key} must be a file name inside the artifact, got {name!r}")
    parts = name.split("/")
    full = posixpath.normpath(posixpath.join(path, name))  # an absolute name replaces path
    if (
        ".." in parts
        or any(ord(c) < 32 for c in name)
        or not full.startswith(posixpath.normpath(path).rstrip("/") + "/")
    ):
        raise ArtifactError(f"files.{key} must stay inside the artifact directory, got {name!r}")
    return full


def resolve(artifact):
    """The artifact with its schema checked and `files` as absolute paths; raises ArtifactError.

    Resolving a resolved artifact gives it back unchanged.
    """
    if not isinstance(artifact, dict):
        raise ArtifactError(f"a kernel artifact is a mapping (kernel_build_artifact), got {type(artifact).__name__}")
    # Manifests written before the schema was numbered have the same layout as schema 1.
    schema = artifact.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ArtifactError(f"artifact schema {schema!r} is not supported (this collection reads schema {SCHEMA})")
    missing = [key for key in ("hash", "id", "release", "arch", "path", "files") if not artifact.get(key)]
    if missing:
        raise ArtifactError(f"the artifact lacks {', '.join(missing)} (is it a kernel_build artifact?)")
    if not (_HEX.fullmatch(str(artifact["hash"])) and len(artifact["hash"]) == 64):
        raise ArtifactError(f"hash must be 64 hex digits, got {artifact['hash']!r}")
    if not (
        _HEX.fullmatch(str(artifact["id"]))
        and len(artifact["id"]) == 16
        and artifact["hash"].startswith(artifact["id"])
    ):
        raise ArtifactError(f"id must be the hash's first 16 hex digits, got {artifact['id']!r}")
    if not _RELEASE.fullmatch(str(artifact["release"])):
        raise ArtifactError(f"release must be a kernel release such as 6.1.0-labkit, got {artifact['release']!r}")
    if artifact["arch"] not in ARCHES:
        raise ArtifactError(f"arch must be one of {', '.join(ARCHES)}, got {artifact['arch']!r}")
    path = artifact["path"]
    if not isinstance(path, str) or not posixpath.isabs(path) or any(ord(c) < 32 for c in path):
        raise ArtifactError(f"path must be the artifact's absolute directory, got {path!r}")
    files = artifact["files"]
    if not isinstance(files, dict):
        raise ArtifactError("files must be a mapping of file roles to names in the artifact")
    absent = [key for key in REQUIRED_FILES if not files.get(key)]
    if absent:
        raise ArtifactError(f"the artifact has no {', '.join('files.' + key for key in absent)}")
    resolved = {key: _inside(files[key], key, path) if files.get(key) else "" for key in FILES}
    result = dict(artifact)
    result.update(schema=SCHEMA, files=resolved, build_host=artifact.get("build_host") or "localhost")
    return result
