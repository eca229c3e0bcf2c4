# -*- coding: utf-8 -*-
# Copyright (c) labkit developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment:
    # The BMC address options idrac_power and bmc_console share. The default values named here are
    # the constants of plugins/module_utils/bmc_inputs.py (DEFAULT_REDFISH_PORT, DEFAULT_SSH_PORT).
    DOCUMENTATION = r"""
options:
  host:
    description:
      - Address of the BMC (or console server), a host name, an IPv4 address or an IPv6 address,
        optionally followed by C(:port) (IPv6 with a port in brackets, C([fe80::1]:8443)).
      - A URL is refused (C(https://idrac) or C(http://idrac)); give the address alone, the module picks
        the protocol. Spaces, control characters, C(/), C(@) and invalid names are refused too.
    type: str
    required: true
    aliases: [baseuri]
  port:
    description:
      - TCP port of the BMC service, 1 to 65535.
      - Defaults to C(443) for Redfish (HTTPS) and C(22) for the iDRAC's SSH service.
      - A port given both here and in O(host) must be the same.
    type: int
"""
