# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The qemu_regions filter: a QEMU host's ivshmem regions checked, sizes in bytes, paths filled in.

Documented in qemu_regions.yml beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.labkit.cluster.plugins.module_utils import qemu_guest as spec


def qemu_regions(regions, hugetlbfs_mount):
    try:
        mount = spec.check_path(hugetlbfs_mount, "qemu_host_hugetlbfs_mount")
        checked = spec.validate_regions(regions)
    except spec.GuestError as exc:
        raise AnsibleFilterError(f"qemu_regions: {exc}") from exc
    return [
        dict(region, path=region["path"] or ("" if region["doorbell"] else f"{mount.rstrip('/')}/{region['name']}"))
        for region in checked.values()
    ]


class FilterModule:
    def filters(self):
        return {"qemu_regions": qemu_regions}
