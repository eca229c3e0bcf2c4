"""Provision the Pis of a lab from Python, then list the hosts whose run failed.

Run with the venv `./labkit setup` made (it makes labkit_cluster importable):
    ~/.cache/labkit/venv/bin/python docs/examples/provision_pis.py inventories/<yours>
"""

import sys

from labkit_cluster import Lab
from labkit_cluster.progress import Progress

lab = Lab(sys.argv[1] if len(sys.argv) > 1 else "inventories/sim")
result = lab.provision(limit="rpi", tags=["lab_base"], on_event=Progress())
for host, stats in result.hosts().items():
    print(f"{host:16} changed={stats['changed']} failed={stats['failures'] + stats['dark']}")
sys.exit(result.rc)
