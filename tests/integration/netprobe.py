"""Packets a hostile container would send, as a standalone script (stdlib only): lab tests run
it inside containers (the ``host`` image sees this file) and on lab clients.

    netprobe.py listen PORT                       print every UDP datagram's payload
    netprobe.py send IP PORT TEXT                 one UDP datagram
    netprobe.py vxlan ADDR VNI MAC IP SRC TEXT    a VXLAN datagram to ADDR:4789 carrying an
                                                  Ethernet frame for MAC/IP, UDP to port 7777
    netprobe.py connect HOST:PORT...              "HOST:PORT open|closed" per TCP target
    netprobe.py loopback IFACE PORT               a raw TCP SYN to 127.0.0.1:PORT through
                                                  IFACE's gateway: "answered" or "silent"
"""

from __future__ import annotations

import concurrent.futures
import select
import socket
import struct
import sys
import time

LISTEN_PORT = 7777
WAIT_S = 2.0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    head = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0, 64, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def vxlan(addr: str, vni: int, target: tuple[str, str, str], text: str) -> None:
    """``target``: the inner frame's (destination MAC, destination IP, source IP)."""
    mac, ip, src = target
    udp = struct.pack("!HHHH", 40000, LISTEN_PORT, 8 + len(text), 0) + text.encode()
    frame = mac_bytes(mac) + mac_bytes("02:00:00:00:00:99") + b"\x08\x00" + ipv4(src, ip, 17, udp)
    header = struct.pack("!II", 0x08000000, vni << 8)  # flags: VNI valid (RFC 7348 §5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(3):
            try:
                sock.sendto(header + frame, (addr, 4789))
            except OSError as exc:  # a drop can come back as EPERM: that is the point
                print(f"{addr}: {exc}")


def listen(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        while True:
            data, _ = sock.recvfrom(2048)
            print(data.decode(errors="replace"), flush=True)


def send(ip: str, port: int, text: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(text.encode(), (ip, port))


def connect(target: str) -> str:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=WAIT_S):
            return f"{target} open"
    except OSError:
        return f"{target} closed"


def gateway_mac(gateway: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"", (gateway, 9))  # makes the kernel resolve it
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with open("/proc/net/arp") as arp:
            for line in arp.read().splitlines()[1:]:
                fields = line.split()
                if fields[0] == gateway and fields[3] != "00:00:00:00:00:00":
                    return fields[3]
        time.sleep(0.05)
    raise SystemExit(f"no ARP entry for {gateway}")


def default_gateway(iface: str) -> str:
    with open("/proc/net/route") as routes:
        for line in routes.read().splitlines()[1:]:
            fields = line.split()
            if fields[0] == iface and fields[1] == "00000000":
                return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    raise SystemExit(f"no default route through {iface}")


def loopback(iface: str, port: int) -> str:
    gateway = default_gateway(iface)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((gateway, 9))
        src = probe.getsockname()[0]
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    raw.bind((iface, 0x0800))
    own = raw.getsockname()[4]
    sport = 41000 + port % 1000
    tcp = struct.pack("!HHIIBBHHH", sport, port, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!BBH", 0, 6, 20)
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    frame = mac_bytes(gateway_mac(gateway)) + own + b"\x08\x00" + ipv4(src, "127.0.0.1", 6, tcp)
    raw.send(frame)
    deadline = time.monotonic() + WAIT_S
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([raw], [], [], left)[0]:
            break
        packet = raw.recv(2048)[14:]
        ihl = (packet[0] & 0x0F) * 4
        from_loopback = packet[9] == 6 and packet[12:16] == socket.inet_aton("127.0.0.1")
        if from_loopback and struct.unpack("!H", packet[ihl + 2 : ihl + 4])[0] == sport:
            return "answered"  # a SYN-ACK or a RST: the host's loopback stack saw the SYN
    return "silent"


def main(argv: list[str]) -> None:
    command, args = argv[0], argv[1:]
    if command == "listen":
        listen(int(args[0]))
    elif command == "send":
        send(args[0], int(args[1]), args[2])
    elif command == "vxlan":
        vxlan(args[0], int(args[1]), (args[2], args[3], args[4]), args[5])
    elif command == "connect":
        with concurrent.futures.ThreadPoolExecutor(len(args)) as pool:
            for line in pool.map(connect, args):
                print(line)
    elif command == "loopback":
        print(loopback(args[0], int(args[1])))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
