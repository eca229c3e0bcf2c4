"""The kernel artifact schema: what the kernel_artifact filter accepts, resolves and refuses, and that
kernel_build writes and docs/artifact.md describes the keys the schema names."""

import re
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.labkit.cluster.plugins.filter.kernel_artifact import kernel_artifact
from ansible_collections.labkit.cluster.plugins.module_utils import kernel_artifact as schema

ROOT = Path(__file__).resolve().parents[2]

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


def test_a_user_mode_linux_artifact_resolves_to_its_linux_program():
    value = artifact(arch="um", srcarch="um", image="linux", release="6.1.192-labkit-uml")
    value["files"] = dict(value["files"], image="linux")
    resolved = kernel_artifact(value)
    assert resolved["files"]["image"] == "/var/cache/labkit/kernel/artifacts/0123456789abcdef/linux"
    assert resolved["arch"] == "um"


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


def test_a_resolved_artifact_resolves_to_itself():
    resolved = kernel_artifact(artifact())
    assert kernel_artifact(resolved) == resolved
    odd = kernel_artifact(
        artifact(path="/srv/a/", files={"image": "./boot//bzImage", "config": "c", "system_map": "m"})
    )
    assert odd["files"]["image"] == "/srv/a/boot/bzImage" and kernel_artifact(odd) == odd


def test_an_absolute_file_inside_the_artifact_is_kept():
    base = "/var/cache/labkit/kernel/artifacts/0123456789abcdef"
    files = {"image": f"{base}/bzImage", "config": f"{base}//config", "system_map": "System.map"}
    resolved = kernel_artifact(artifact(files=files))
    assert resolved["files"]["image"] == f"{base}/bzImage" and resolved["files"]["config"] == f"{base}/config"


@pytest.mark.parametrize(
    "image",
    [
        "/var/cache/labkit/kernel/artifacts/0123456789abcdef-other/bzImage",
        "/var/cache/labkit/kernel/artifacts/0123456789abcdef/../x/bzImage",
        "/var/cache/labkit/kernel/artifacts/0123456789abcdef",
        ".",
        "bzImage\n",
    ],
)
def test_a_file_outside_the_artifact_is_refused(image):
    files = {"image": image, "config": "config", "system_map": "System.map"}
    with pytest.raises(AnsibleFilterError, match="inside the artifact"):
        kernel_artifact(artifact(files=files))


def test_a_path_with_a_control_character_is_refused():
    with pytest.raises(AnsibleFilterError, match="absolute directory"):
        kernel_artifact(artifact(path="/var/cache/labkit/kernel/artifacts/x\ty"))


def _written_manifest() -> dict:
    tasks = yaml.safe_load((ROOT / "roles" / "kernel_build" / "tasks" / "artifact.yml").read_text())
    package = next(task for task in tasks if task["name"] == "Package the artifact")
    (write,) = [task for task in package["block"] if task["name"] == "Write the manifest"]
    return write["vars"]["__manifest"]


def test_kernel_build_writes_the_keys_of_the_schema():
    manifest = _written_manifest()
    assert list(manifest) == list(schema.MANIFEST_KEYS)
    assert manifest["schema"] == schema.SCHEMA
    assert list(manifest["files"]) == list(schema.FILES)


def test_the_fact_is_the_manifest_plus_path_build_host_and_built():
    tasks = yaml.safe_load((ROOT / "roles" / "kernel_build" / "tasks" / "artifact.yml").read_text())
    (fact,) = [task for task in tasks if "kernel_build_artifact" in task.get("ansible.builtin.set_fact", {})]
    added = re.search(r"combine\(\{(.*?)\}\)", fact["ansible.builtin.set_fact"]["kernel_build_artifact"], re.S).group(1)
    assert re.findall(r"'(\w+)':", added) == list(schema.FACT_KEYS)


def test_docs_describe_every_key():
    text = (ROOT / "docs" / "artifact.md").read_text()
    assert f"# Kernel artifacts (schema {schema.SCHEMA})" in text
    for key in schema.MANIFEST_KEYS + schema.FACT_KEYS:
        assert f"| `{key}` |" in text, key
    for key in schema.FILES:
        assert re.search(rf"^\| `{key}` \| ", text, re.M), f"files.{key}"
