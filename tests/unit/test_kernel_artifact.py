"""The kernel artifact schema: what the kernel_artifact filter accepts, resolves and refuses."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labkit.cluster.plugins.filter.kernel_artifact import kernel_artifact

HASH = "0123456789abcdef" * 4


def artifact(**changes):
    value = {
        "schema": 1,
        "hash": HASH,
        "id": HASH[:16],
        "release": "6.1.158-labkit-suite",
        "arch": "x86_64",
        "image": "bzImage",
        "path": "/var/cache/labkit/kernel/artifacts/0123456789abcdef",
        "build_host": "build",
        "files": {
            "image": "bzImage",
            "config": "config",
            "system_map": "System.map",
            "modules": "modules",
            "dtbs": None,
            "headers": "headers",
            "log": "build.log",
        },
    }
    value.update(changes)
    return value


def test_files_resolve_inside_the_artifact():
    resolved = kernel_artifact(artifact())
    base = "/var/cache/labkit/kernel/artifacts/0123456789abcdef"
    assert resolved["files"]["image"] == f"{base}/bzImage"
    assert resolved["files"]["headers"] == f"{base}/headers"
    assert resolved["files"]["dtbs"] == "" and resolved["files"]["overlays"] == ""
    assert resolved["release"] == "6.1.158-labkit-suite" and resolved["build_host"] == "build"


def test_a_manifest_without_a_schema_number_reads_as_schema_1():
    value = artifact()
    del value["schema"], value["build_host"]
    resolved = kernel_artifact(value)
    assert resolved["schema"] == 1 and resolved["build_host"] == "localhost"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema": 2}, "schema 2 is not supported"),
        ({"hash": "x" * 64}, "hash must be 64 hex"),
        ({"id": "fedcba9876543210"}, "id must be the hash's first 16"),
        ({"release": "6.1\nextra"}, "release must be a kernel release"),
        ({"release": "../../etc"}, "release must be a kernel release"),
        ({"arch": "mips"}, "arch must be one of"),
        ({"path": "artifacts/x"}, "path must be the artifact's absolute directory"),
        (
            {"files": {"image": "../../boot/vmlinuz", "config": "config", "system_map": "System.map"}},
            "inside the artifact",
        ),
        ({"files": {"image": "/boot/vmlinuz", "config": "config", "system_map": "System.map"}}, "inside the artifact"),
        ({"files": {"config": "config", "system_map": "System.map"}}, "no files.image"),
        ({"release": ""}, "lacks release"),
    ],
)
def test_a_malformed_artifact_is_refused_naming_the_field(changes, message):
    with pytest.raises(AnsibleFilterError, match=message):
        kernel_artifact(artifact(**changes))


def test_a_path_string_is_not_an_artifact():
    with pytest.raises(AnsibleFilterError, match="is a mapping"):
        kernel_artifact("/var/cache/labkit/kernel/artifacts/0123456789abcdef")
