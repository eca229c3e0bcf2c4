"""labkit.cluster from Python: provision a lab from its inventory and read what each host did.

    from labkit_cluster import Lab

    lab = Lab("inventories/lab")
    result = lab.provision(limit="rpi", tags=["rpi_kernel"], on_event=print_progress)
    for host, stats in result.hosts().items():
        print(host, stats)

It runs playbooks/cluster.yml through ansible-runner, with the checkout's ansible.cfg and roles.
"""

from labkit_cluster.lab import Lab
from labkit_cluster.runner import RunResult, run

__all__ = ["Lab", "RunResult", "run"]
