"""The Debian mirror for image builds: read from apt's sources (both formats), overridden by the variable."""

import subprocess
import sys
from pathlib import Path

import pytest
from simlab import apt_sources, image
from simlab.apt_sources import ENV_VAR, MirrorError, debian_mirror
from simlab.errors import SimlabError

SCRIPT = Path(apt_sources.__file__)
DEBIAN_KEY = "/usr/share/keyrings/debian-archive-keyring.gpg"

# Debian 12's own sources file (a container or cloud image), with the security archive beside it.
DEBIAN_SOURCES = f"""\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.lab.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: {DEBIAN_KEY}

Types: deb
URIs: http://mirror.lab.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: {DEBIAN_KEY}
"""


def make_root(tmp_path: Path, sources_list: str | None = None, **parts: str) -> Path:
    """A fake / with etc/apt/sources.list and sources.list.d/<name> for each part (dots as `__`)."""
    etc = tmp_path / "etc" / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    if sources_list is not None:
        (etc / "sources.list").write_text(sources_list)
    for name, text in parts.items():
        (etc / "sources.list.d" / name.replace("__", ".")).write_text(text)
    return tmp_path


def mirror(root: Path, suite: str = "bookworm", arch: str = "amd64", **environ: str) -> str:
    return debian_mirror(suite, environ=environ, root=root, arch=arch)


def add_release(root: Path, list_name: str, origin: str) -> None:
    lists = root / "var" / "lib" / "apt" / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    text = f"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: {origin}\nCodename: bookworm\n"
    (lists / list_name).write_text(text)


def test_deb822_picks_the_main_archive_not_security_or_updates(tmp_path):
    root = make_root(tmp_path, debian__sources=DEBIAN_SOURCES)
    assert mirror(root) == "http://mirror.lab.example/debian"


def test_deb822_fields_are_expanded_and_read_case_insensitively():
    text = (
        "types: deb deb-src\nURIS: http://a.example/debian http://b.example/debian/\n"
        "Suites: bookworm\nComponents: main contrib\n"
    )
    entries = apt_sources.parse_deb822(text)
    assert [(e.type, e.uri) for e in entries] == [
        ("deb", "http://a.example/debian"),
        ("deb", "http://b.example/debian/"),
        ("deb-src", "http://a.example/debian"),
        ("deb-src", "http://b.example/debian/"),
    ]
    assert entries[0].components == ("main", "contrib")


def test_one_line_format_with_options_and_comments(tmp_path):
    root = make_root(
        tmp_path,
        sources_list=(
            "# deb http://commented.example/debian bookworm main\n"
            "deb-src http://src.example/debian bookworm main\n"
            f"deb [ arch=amd64,arm64 signed-by={DEBIAN_KEY} ] http://proxy.lab:3142/debian/ bookworm main  # proxy\n"
            "deb http://security.debian.org/debian-security bookworm-security main\n"
        ),
    )
    assert mirror(root) == "http://proxy.lab:3142/debian"
    entry = apt_sources.read_entries(root)[1]
    assert entry.archs == ("amd64", "arm64")
    assert entry.signed_by == (DEBIAN_KEY,)
    assert entry.where.endswith("sources.list:3")


def test_sources_list_comes_before_sources_list_d_and_list_files_count(tmp_path):
    root = make_root(
        tmp_path,
        sources_list="deb http://first.example/debian bookworm main\n",
        debian__sources=DEBIAN_SOURCES,
    )
    assert mirror(root) == "http://first.example/debian"
    root2 = make_root(tmp_path / "2", **{"a-local.list": "deb http://local.example/debian bookworm main\n"})
    assert mirror(root2) == "http://local.example/debian"


def test_files_apt_ignores_are_ignored(tmp_path):
    root = make_root(
        tmp_path,
        **{
            "old.list.disabled": "deb http://disabled.example/debian bookworm main\n",
            "debian.sources.save": DEBIAN_SOURCES.replace("mirror.lab", "saved"),
            "debian.sources": DEBIAN_SOURCES,
        },
    )
    assert mirror(root) == "http://mirror.lab.example/debian"


def test_disabled_entries_are_skipped(tmp_path):
    disabled = "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
    root = make_root(tmp_path, debian__sources=disabled + DEBIAN_SOURCES)
    assert mirror(root) == "http://mirror.lab.example/debian"


def test_third_party_repositories_are_not_debian(tmp_path):
    third_party = (
        # its own keyring
        "deb [signed-by=/usr/share/keyrings/microsoft.gpg] https://packages.example/debian/12/prod bookworm main\n"
        # no main component
        "deb https://download.docker.com/linux/debian bookworm stable\n"
        # another suite
        "deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main\n"
    )
    embedded = (
        "Types: deb\nURIs: https://vendor.example/apt\nSuites: bookworm\nComponents: main\n"
        "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBGVendorKey\n -----END PGP PUBLIC KEY BLOCK-----\n"
    )
    root = make_root(
        tmp_path, **{"a-vendor.list": third_party, "b-vendor.sources": embedded, "debian.sources": DEBIAN_SOURCES}
    )
    assert mirror(root) == "http://mirror.lab.example/debian"


def test_apt_lists_reject_a_source_whose_release_is_not_debian(tmp_path):
    # An old-style third-party line (no signed-by, suite bookworm, component main) sorted first.
    root = make_root(
        tmp_path,
        **{
            "azure-cli.list": "deb [arch=amd64] https://packages.microsoft.com/repos/azure-cli/ bookworm main\n",
            "debian.sources": DEBIAN_SOURCES,
        },
    )
    assert mirror(root) == "https://packages.microsoft.com/repos/azure-cli"  # nothing says otherwise yet
    add_release(root, "packages.microsoft.com_repos_azure-cli_dists_bookworm_InRelease", "microsoft-debian")
    assert mirror(root) == "http://mirror.lab.example/debian"


def test_apt_lists_confirmed_debian_source_is_preferred(tmp_path):
    root = make_root(
        tmp_path,
        sources_list="deb http://unknown.example/debian bookworm main\n",
        debian__sources=DEBIAN_SOURCES,
    )
    add_release(root, "mirror.lab.example_debian_dists_bookworm_InRelease", "Debian")
    assert mirror(root) == "http://mirror.lab.example/debian"


def test_list_file_names_follow_apt():
    assert apt_sources._list_name("http://deb.example/debian/dists/bookworm/") == "deb.example_debian_dists_bookworm_"
    assert apt_sources._list_name("http://user:pw@proxy:3142/debian/") == "proxy:3142_debian_"
    assert apt_sources._list_name("file:/srv/my_mirror/") == "_srv_my%5fmirror_"


def test_other_architectures_are_skipped(tmp_path):
    root = make_root(
        tmp_path,
        sources_list=(
            "deb [arch=arm64] http://ports.example/debian bookworm main\ndeb http://any.example/debian bookworm main\n"
        ),
    )
    assert mirror(root, arch="amd64") == "http://any.example/debian"
    assert mirror(root, arch="arm64") == "http://ports.example/debian"


def test_cdrom_is_skipped_and_file_is_kept(tmp_path):
    root = make_root(
        tmp_path,
        sources_list=(
            "deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1]/ bookworm contrib main\n"
            "deb file:/srv/mirror/debian bookworm main\n"
        ),
    )
    cdrom = apt_sources.read_entries(root)[0]
    assert cdrom.uri.startswith("cdrom:[Debian GNU/Linux") and cdrom.suite == "bookworm"
    assert mirror(root) == "file:/srv/mirror/debian"


def test_mirror_file_method_gives_its_first_mirror(tmp_path):
    source = "Types: deb\nURIs: mirror+file:///etc/apt/mirrors/debian.list\nSuites: bookworm\nComponents: main\n"
    root = make_root(tmp_path, debian__sources=source)
    (root / "etc" / "apt" / "mirrors").mkdir()
    (root / "etc" / "apt" / "mirrors" / "debian.list").write_text(
        "# cloud mirrors\nhttps://cloud.example/debian\tpriority:1\nhttps://second.example/debian\n"
    )
    assert mirror(root) == "https://cloud.example/debian"


def test_the_variable_overrides_apt_sources(tmp_path):
    root = make_root(tmp_path, debian__sources=DEBIAN_SOURCES)
    assert mirror(root, **{ENV_VAR: " http://override.example/debian/ "}) == "http://override.example/debian"
    assert mirror(root, **{ENV_VAR: ""}) == "http://mirror.lab.example/debian"  # empty means unset


@pytest.mark.parametrize("value", ["mirror.example/debian", "http://a.example/debian\nhttp://b", "http://x\x01y"])
def test_a_variable_that_is_not_a_uri_is_refused(tmp_path, value):
    with pytest.raises(MirrorError, match=ENV_VAR):
        mirror(make_root(tmp_path), **{ENV_VAR: value})


def test_no_debian_source_is_an_error_naming_the_variable(tmp_path):
    root = make_root(tmp_path, sources_list="deb http://archive.ubuntu.com/ubuntu jammy main\n")
    with pytest.raises(MirrorError, match=f"set {ENV_VAR} to"):
        mirror(root)
    with pytest.raises(MirrorError, match="no file under"):
        mirror(tmp_path / "empty")


def test_cli_prints_the_mirror_or_fails_with_the_message(tmp_path):
    def run(value: str) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/bin:/bin", ENV_VAR: value}
        return subprocess.run(
            [sys.executable, str(SCRIPT), "bookworm"], env=env, capture_output=True, text=True, check=False
        )

    ok = run("http://cli.example/debian")
    assert (ok.returncode, ok.stdout) == (0, "http://cli.example/debian\n")
    bad = run("not a uri")
    assert bad.returncode == 1 and ENV_VAR in bad.stderr and not bad.stdout


def test_the_image_key_does_not_depend_on_the_mirror(monkeypatch):
    before = image.image_key("ssh-ed25519 AAAA test")
    monkeypatch.setenv(ENV_VAR, "http://elsewhere.example/debian")
    assert image.image_key("ssh-ed25519 AAAA test") == before


def test_simlab_reports_a_missing_mirror_as_its_own_error(monkeypatch):
    def no_mirror(suite):
        raise MirrorError(f"set {ENV_VAR}")

    monkeypatch.setattr(apt_sources, "debian_mirror", no_mirror)
    with pytest.raises(SimlabError, match=ENV_VAR):
        image.mirror()
