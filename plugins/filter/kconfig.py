# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that write Kconfig fragments with the rules the kconfig module reads them by.

Documented in kconfig_fragment.yml and kconfig_quote.yml beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.labkit.cluster.plugins.module_utils import kconfig


def kconfig_fragment(symbols):
    """A fragment with one line per symbol of a mapping, in its order."""
    if not isinstance(symbols, Mapping):
        raise AnsibleFilterError(f"kconfig_fragment expects a mapping of symbols, got {type(symbols).__name__}")
    try:
        return kconfig.fragment(symbols)
    except kconfig.KconfigError as exc:
        raise AnsibleFilterError(f"kconfig_fragment: {exc}") from exc


def kconfig_quote(text):
    """A text as a Kconfig string value (always quoted, even when it looks like a number or y)."""
    try:
        return kconfig.quote(text)
    except kconfig.KconfigError as exc:
        raise AnsibleFilterError(f"kconfig_quote: {exc}") from exc


class FilterModule:
    def filters(self):
        return {
            "kconfig_fragment": kconfig_fragment,
            "kconfig_quote": kconfig_quote,
        }
