"""Kiln's lab: a small data centre on one machine (``kiln-lab up|down``).

The provisioning network lives in the network namespace ``kiln-lab``: a bridge with dnsmasq (DHCP,
TFTP) on 10.99.0.2, and one veth to the host namespace whose host end, 10.99.0.1, is where the VMs
find the conductor's HTTP boot files and image server, RabbitMQ (forwarded to 127.0.0.1:5672) and
kiln-api. Each VM (libvirt, TCG) has a virtio NIC that is a macvtap on the host end of a veth of
its own whose other end is on the lab bridge: libvirt in the host namespace can (re)create the NIC
at every power-on, and the VM's frames can only go to the lab bridge. Nothing routes out: the
namespace has no other link, dnsmasq hands out no router, and forwarding is off on the host end.
Each VM has a Redfish BMC (sushy-tools, libvirt mode) and an IPMI BMC (virtualbmc) on 127.0.0.1.
Everything created is recorded in the lab's state file first, so ``down`` removes exactly that.
"""
