# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kernel_artifact filter: a kernel_build artifact checked against its schema, files resolved.

Documented in kernel_artifact.yml beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.labkit.cluster.plugins.module_utils import kernel_artifact as schema


def kernel_artifact(artifact):
    try:
        return schema.resolve(artifact)
    except schema.ArtifactError as exc:
        raise AnsibleFilterError(f"kernel_artifact: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"kernel_artifact": kernel_artifact}
