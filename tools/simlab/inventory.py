"""Read the lab from an Ansible inventory: the inventory is the single source of truth.

Ansible's own inventory and variable code reads it, so group_vars, host_vars, templated values
and vault-encrypted passwords (with ANSIBLE_VAULT_PASSWORD_FILE) work exactly as in a playbook.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from simlab.errors import SimlabError

GUEST_GROUPS = ("build_hosts", "rpi", "dcpim_hosts", "qemu_hosts")
BMC_GROUPS = ("idrac_machines",)
_PLUGIN_LOADER_READY = False
# How a guest boots: "direct" (QEMU loads the image's kernel), "rpi" (the emulated Pi firmware
# chooses the kernel from the guest's boot partition, as config.txt/tryboot.txt say) or "uefi"
# (OVMF runs GRUB EFI from the guest's disk; grub-reboot/grub-set-default choose the next boot).
FIRMWARES = ("direct", "rpi", "uefi")


@dataclass(frozen=True)
class GuestSpec:
    name: str
    groups: tuple[str, ...]
    port: int
    lab_address: str
    lab_prefix: int
    memory_mb: int
    cpus: int
    boot_timeout: int
    firmware: str = ""  # "rpi": the emulated Raspberry Pi firmware; "uefi": OVMF + GRUB EFI
    tryboot_timeout: int = 240

    @property
    def role(self) -> str:
        return ",".join(self.groups)

    @property
    def mac(self) -> str:
        """A stable, locally administered MAC for the lab NIC, derived from the host name."""
        digest = hashlib.sha256(self.name.encode()).digest()
        return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


@dataclass(frozen=True)
class BmcSpec:
    name: str
    groups: tuple[str, ...]
    port: int
    username: str
    password: str = field(repr=False)
    system_id: str
    pxe_mac: str

    @property
    def role(self) -> str:
        return ",".join(self.groups)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class LabSpec:
    inventory: Path
    name: str
    guests: dict[str, GuestSpec]
    bmcs: dict[str, BmcSpec]

    def ports(self) -> dict[int, str]:
        used = {g.port: g.name for g in self.guests.values()}
        used.update({b.port: b.name for b in self.bmcs.values()})
        return used


def lab_name(inventory: Path) -> str:
    """One running lab per inventory: name it after the inventory and its absolute path."""
    resolved = inventory.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return f"{resolved.name}-{digest}"


def load(inventory: str | os.PathLike) -> LabSpec:
    path = Path(inventory)
    if not path.exists():
        raise SimlabError(f"inventory {path} does not exist: pass --inventory with a file or directory")
    hostvars = _ansible_hostvars(path)
    guests: dict[str, GuestSpec] = {}
    bmcs: dict[str, BmcSpec] = {}
    for name, (groups, hv) in sorted(hostvars.items()):
        guest_groups = tuple(g for g in groups if g in hv.get("simlab_guest_groups", GUEST_GROUPS))
        bmc_groups = tuple(g for g in groups if g in hv.get("simlab_bmc_groups", BMC_GROUPS))
        if guest_groups and bmc_groups:
            raise SimlabError(
                f"host {name} is in guest groups {list(guest_groups)} and BMC groups {list(bmc_groups)}: "
                "a sim host is either a QEMU guest or a BMC, put it in one kind of group"
            )
        if guest_groups:
            guests[name] = _guest(name, guest_groups, hv)
        elif bmc_groups:
            bmcs[name] = _bmc(name, bmc_groups, hv)
    if not guests and not bmcs:
        raise SimlabError(
            f"inventory {path} names no host in {list(GUEST_GROUPS)} or {list(BMC_GROUPS)}: nothing to simulate"
        )
    spec = LabSpec(inventory=path, name=lab_name(path), guests=guests, bmcs=bmcs)
    _check_unique(spec)
    return spec


def _ansible_hostvars(path: Path) -> dict[str, tuple[list[str], dict]]:
    # Imported here so `simlab --help` works before the venv has ansible-core.
    from ansible.cli import CLI
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    global _PLUGIN_LOADER_READY  # noqa: PLW0603 - Ansible's collection finder may be installed once
    if not _PLUGIN_LOADER_READY:
        init_plugin_loader([])
        _PLUGIN_LOADER_READY = True
    loader = DataLoader()
    vault_file = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if vault_file:
        CLI.setup_vault_secrets(loader, vault_ids=[], vault_password_files=[vault_file])
    manager = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=manager)
    result = {}
    for host in manager.get_hosts():
        hv = variables.get_vars(host=host)
        templar = Templar(loader=loader, variables=hv)
        wanted = {
            key: value
            for key, value in hv.items()
            if key.startswith(("simlab_", "idrac_", "lab_")) or key in ("ansible_port", "ansible_host")
        }
        try:
            rendered = templar.template(wanted)
        except Exception as exc:  # Ansible raises several types; all mean the same here
            raise SimlabError(f"host {host.name}: cannot render its variables from {path}: {exc}") from exc
        groups = [g.name for g in host.get_groups() if g.name not in ("all", "ungrouped")]
        result[host.name] = (groups, dict(rendered))
    return result


def _int_field(name: str, hv: dict, key: str, default: int | None = None, what: str = "") -> int:
    value = hv.get(key, default)
    if value is None:
        raise SimlabError(f"host {name}: no {key} in the inventory; {what}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SimlabError(f"host {name}: {key}={value!r} is not a number; {what}") from None


def _port(name: str, hv: dict, key: str, what: str) -> int:
    port = _int_field(name, hv, key, what=what)
    if not 1024 <= port <= 65535:
        raise SimlabError(f"host {name}: {key}={port} is outside 1024-65535; {what}")
    return port


def _guest(name: str, groups: tuple[str, ...], hv: dict) -> GuestSpec:
    host = str(hv.get("ansible_host", "127.0.0.1"))
    if host not in ("127.0.0.1", "localhost"):
        raise SimlabError(
            f"host {name}: ansible_host={host} but sim guests are reached on 127.0.0.1; "
            "set ansible_host: 127.0.0.1 (a real lab inventory does not go through simlab)"
        )
    port = _port(name, hv, "ansible_port", "give each sim guest its own SSH port, e.g. ansible_port: 2221")
    address = hv.get("lab_address")
    if not address:
        raise SimlabError(f"host {name}: no lab_address; give each sim guest its address on the lab network")
    prefix = _int_field(name, hv, "lab_network_prefix", 24)
    try:
        ipaddress.ip_interface(f"{address}/{prefix}")
    except ValueError:
        raise SimlabError(f"host {name}: lab_address={address}/{prefix} is not an IPv4/IPv6 address") from None
    return GuestSpec(
        name=name,
        groups=groups,
        port=port,
        lab_address=str(address),
        lab_prefix=prefix,
        memory_mb=_int_field(name, hv, "simlab_memory_mb", 1024),
        cpus=_int_field(name, hv, "simlab_cpus", 2),
        boot_timeout=_int_field(name, hv, "simlab_boot_timeout", 300),
        firmware=_firmware(name, groups, hv),
        tryboot_timeout=_int_field(name, hv, "simlab_tryboot_timeout", 240),
    )


def _firmware(name: str, groups: tuple[str, ...], hv: dict) -> str:
    firmware = str(hv.get("simlab_firmware", "rpi" if "rpi" in groups else "direct"))
    if firmware not in FIRMWARES:
        raise SimlabError(f"host {name}: simlab_firmware={firmware!r}; choose one of {sorted(FIRMWARES)}")
    return "" if firmware == "direct" else firmware


def _bmc(name: str, groups: tuple[str, ...], hv: dict) -> BmcSpec:
    host = str(hv.get("idrac_hostname", "127.0.0.1"))
    if host not in ("127.0.0.1", "localhost"):
        raise SimlabError(f"host {name}: idrac_hostname={host} but sim BMCs listen on 127.0.0.1; set it so")
    port = _port(name, hv, "idrac_port", "give each sim BMC its own HTTPS port, e.g. idrac_port: 18441")
    password = hv.get("idrac_password")
    if not password:
        raise SimlabError(f"host {name}: no idrac_password; set it in the inventory (ansible-vault for real labs)")
    return BmcSpec(
        name=name,
        groups=groups,
        port=port,
        username=str(hv.get("idrac_username", "root")),
        password=str(password),
        system_id=str(hv.get("idrac_system_id", "System.Embedded.1")),
        pxe_mac=str(hv.get("idrac_pxe_mac", "")),
    )


def _check_unique(spec: LabSpec) -> None:
    seen: dict[int, str] = {}
    for host in [*spec.guests.values(), *spec.bmcs.values()]:
        if host.port in seen:
            raise SimlabError(
                f"hosts {seen[host.port]} and {host.name} both use port {host.port}: give each its own port"
            )
        seen[host.port] = host.name
    addresses: dict[str, str] = {}
    for guest in spec.guests.values():
        if guest.lab_address in addresses:
            raise SimlabError(
                f"hosts {addresses[guest.lab_address]} and {guest.name} both have lab_address "
                f"{guest.lab_address}: give each its own address"
            )
        addresses[guest.lab_address] = guest.name
