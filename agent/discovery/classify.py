"""What a LAN device is, from the evidence a sweep gathers cheaply, or "unsure" when that
evidence does not settle it. Pure and table-driven: every rule below is a row of a table.

Classes: ``computer`` (desktop, laptop), ``printer`` (incl. scanners and copiers), ``phone``
(incl. tablets), ``network`` (routers, switches, access points, ISP modems/ONTs), ``camera``
(IP cameras and their recorders), ``unsure``. The wire also accepts ``unknown``, the older
agents' word for "could not tell"; this agent never says it.

Evidence, each with a weight per class it speaks for (negative: speaks against):
  - the names (reverse DNS, NetBIOS): set by the OS ("DESKTOP-7QK2M1", "NPI8F2A1C") or by a
    person ("PC-KETOAN", "may-in-tang2");
  - the vendor of the MAC (OUI): who made the network card, which is often but not always
    who made the device (HP makes PCs and printers, Samsung phones and printers);
  - the subnet's default gateway is network gear;
  - the TTL of an ICMP echo reply on the local link (Windows starts at 128, Linux/Android/
    iOS/macOS at 64, much network gear at 255);
  - an answer to a NetBIOS node-status query (Windows, or Samba);
  - a locally administered (random) MAC: phones' Wi-Fi privacy addresses, also VMs;
  - open TCP ports, when the (off by default) port probe ran.

Per class the scores of the evidence sources add up (within one source the strongest rule
counts once). The best class wins when it scores at least SURE_SCORE and beats the runner-up
by at least SURE_MARGIN; otherwise the device is ``unsure``, and it is never counted as a
computer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CLASSES = ("computer", "printer", "phone", "network", "camera", "unsure")
SURE_SCORE = 2
SURE_MARGIN = 1
MAX_EVIDENCE = 200  # characters of the evidence text (the wire's limit)


@dataclass(frozen=True)
class Evidence:
    vendor: str | None = None
    names: tuple[str, ...] = ()
    random_mac: bool = False
    gateway: bool = False
    ttl: int | None = None
    netbios: bool = False
    ports: frozenset[int] = frozenset()


def _rx(p: str) -> re.Pattern[str]:
    return re.compile(p, re.I)


# (pattern on the host label, {class: weight}, what it says). Within the names the strongest
# weight per class counts; a name set by the OS itself is strongest.
NAME_RULES: tuple[tuple[re.Pattern[str], dict[str, int], str], ...] = (
    (_rx(r"^desktop-[a-z0-9]{7}$|^laptop-[a-z0-9]{8}$|^win-[a-z0-9]{11}$"), {"computer": 4}, "Windows default name"),
    (_rx(r"^npi[0-9a-f]{6}$|^hp[0-9a-f]{6}$|^br[nw][0-9a-f]{12}$|^epson[0-9a-f]{6}$|^kmf[0-9a-f]{6}$"),
     {"printer": 4}, "printer default name"),
    (_rx(r"print|mfp|laserjet|officejet|deskjet|pagewide|pixma|ecotank|imagerunner|imageclass|i-sensys|^lbp\d|"
         r"^mf\d{3}|scan|copier|photocopy|may-?in|mayin|may-?quet|mayquet|may-?photo|ricoh|kyocera|konica|xerox|"
         r"epson|canon|brother|aficio|bizhub|taskalfa|ecosys|docucentre|apeos"), {"printer": 4}, "printer name"),
    (_rx(r"iphone|ipad|^android-[0-9a-f]{8,}|galaxy|redmi|xiaomi|^poco|oppo|^vivo|realme|nokia|pixel|honor|oneplus|"
         r"vsmart|bphone|huawei[-_]?(p|mate|nova|y)\d|^sm-[a-z]\d|dien-?thoai"), {"phone": 4}, "phone name"),
    (_rx(r"camera|^cam[-_]?\d|^ipc|ipcam|nvr|dvr|hikvision|dahua|ezviz|imou|kbvision|^ds-\d"),
     {"camera": 4}, "camera name"),
    (_rx(r"router|gateway|modem|switch|\bap\b|access-?point|tplink|tp-link|archer|^deco|mikrotik|unifi|draytek|"
         r"vigor|huawei-?hg|^hg\d{3,4}|zte-?f\d|gpon|\bont\b|\bonu\b|igate|repeater|extender|tenda|mercusys|"
         r"totolink|ruijie"), {"network": 3}, "network gear name"),
    (_rx(r"desktop|laptop|notebook|workstation|thinkpad|macbook|imac|mac-?mini|\bpc\b|^pc([-_]|\d|$)|[-_]pc\d*$|"
         r"may-?tinh|maytinh|^may[-_]?(?!in\b|in[-_]|quet|scan|chieu|photo)[a-z0-9]"), {"computer": 3}, "computer name"),
    (_rx(r"ke-?toan|van-?thu|tiep-?dan|mot-?cua|dia-?chinh|tu-?phap|chu-?tich|van-?phong|thu-?quy|noi-?vu|"
         r"van-?hoa|lanh-?dao|\bwin(dows)?\d*\b|ubuntu"), {"computer": 3}, "office desk name"),
)

# (pattern on the OUI vendor, {class: weight}, what it says); the first match counts. Words,
# not substrings: "zte" must not match "Aztech", nor "acer" "Apacer", nor "dell" "Modelleisenbahn".
VENDOR_RULES: tuple[tuple[re.Pattern[str], dict[str, int], str], ...] = (
    # printers, scanners, copiers
    (_rx(r"\b(brother|seiko epson|ricoh|konica minolta|xerox|fujifilm business|fuji xerox|kyocera document|"
         r"toshiba tec|lexmark|pantum|sindoh|plustek|pfu)\b"), {"printer": 4}, "printer maker"),
    (_rx(r"\b(canon|kyocera|oki electric|zebra technologies)\b"), {"printer": 3}, "printer maker"),
    (_rx(r"\bsharp\b"), {"printer": 2, "phone": 1}, "copiers, also phones and TVs"),
    # cameras
    (_rx(r"\b(hikvision|dahua|ezviz|uniview|tiandy|axis communications|vivotek|hanwha|samsung techwin)\b"),
     {"camera": 4}, "camera maker"),
    # network gear (ISP ONTs of VNPT, Viettel, FPT included)
    (_rx(r"hewlett packard enterprise|\baruba\b"), {"network": 3}, "network maker"),
    (_rx(r"\b(tp-link|tenda|mercusys|totolink|zioncom|cisco|linksys|draytek|ubiquiti|routerboard|mikrotik|"
         r"juniper|d-link|netgear|zyxel|ruijie|h3c|fortinet|sophos|edgecore|cambium|fiberhome|dasan|gcom|"
         r"nokia shanghai bell|nokia solutions|alcatel-lucent|vnpt|viettel|zte|comfast|wavlink)\b"),
     {"network": 3}, "network maker"),
    (_rx(r"\bhuawei technologies\b"), {"network": 2, "phone": 1}, "ONTs/routers, also phones"),
    (_rx(r"\bgrandstream\b|\byealink\b"), {"network": 2}, "VoIP/network maker"),
    # phones and tablets
    (_rx(r"\b(huawei device|honor device|guangdong oppo|oppo|vivo mobile|realme|oneplus|hmd global|nokia|"
         r"motorola mobility|lenovo mobile|sony mobile|tecno mobile|infinix|itel mobile|meizu|vingroup|bkav|"
         r"lg electronics \(mobile)"), {"phone": 4}, "phone maker"),
    (_rx(r"\bxiaomi\b"), {"phone": 3, "network": 1, "camera": 1}, "phones, also routers and cameras"),
    (_rx(r"\bsamsung electronics\b"), {"phone": 1, "printer": 1}, "phones, printers and TVs alike"),
    (_rx(r"\bapple\b"), {"computer": 1, "phone": 1}, "Macs and iPhones/iPads alike"),
    # computers: makers, motherboards, laptop ODMs, PC network/Wi-Fi chips
    (_rx(r"\bhewlett[ -]packard\b|^hp$"), {"computer": 1, "printer": 1}, "PCs and printers alike"),
    (_rx(r"\b(dell|lenovo|lcfc|giga-?byte|asrock|micro-star|elitegroup|biostar|intel corporate|intel)\b"),
     {"computer": 3}, "PC maker or PC network card"),
    (_rx(r"\basustek\b"), {"computer": 2, "network": 1}, "PCs, also routers"),
    (_rx(r"\b(acer|microsoft|fujitsu|toshiba|wistron|quanta|compal|pegatron|inventec|realtek|liteon|lite-on|"
         r"azurewave|hon hai|foxconn|universal global|ampak)\b"), {"computer": 2}, "PC maker or PC network card"),
    (_rx(r"\b(raspberry pi|vmware|xensource|parallels|qemu)\b"), {}, "single-board or virtual machine"),
)

# Initial TTL of an echo reply on the local link -> ({class: weight}, what it says).
TTL_RULES: dict[int, tuple[dict[str, int], str]] = {
    64: ({"computer": -1}, "Linux, Android, iOS, macOS or an appliance"),
    128: ({"computer": 2}, "Windows"),
    255: ({"network": 1, "computer": -2}, "network gear or printer firmware, not a PC"),
}
TTL_MAX_HOPS = 4  # a reply seen on the local link has lost at most a few hops

PORT_RULES: dict[int, tuple[dict[str, int], str]] = {
    9100: ({"printer": 4}, "raw printing"),
    631: ({"printer": 3}, "IPP printing"),
    515: ({"printer": 3}, "LPD printing"),
    445: ({"computer": 2}, "Windows file sharing"),
    3389: ({"computer": 3}, "Remote Desktop"),
    62078: ({"phone": 4}, "iPhone/iPad sync"),
    554: ({"camera": 3}, "RTSP video"),
    37777: ({"camera": 4}, "Dahua camera service"),
}
NETBIOS = ({"computer": 2}, "answered NetBIOS (Windows)")
GATEWAY = ({"network": 5}, "default gateway of the subnet")
RANDOM_MAC = ({"phone": 1}, "random MAC (phones' Wi-Fi privacy address, or a VM)")


def _label(name: str) -> str:
    """The host part of a DNS name, bounded (a DNS label is at most 63 characters)."""
    return name.strip().split(".")[0][:63]


def _initial_ttl(ttl: int) -> int | None:
    for start in sorted(TTL_RULES):
        if start - TTL_MAX_HOPS <= ttl <= start:
            return start
    return None


def classify(e: Evidence) -> tuple[str, str]:
    """(class, evidence text): the class is one of CLASSES; the text says what it rests on."""
    score: dict[str, int] = {}
    said: list[str] = []

    def vote(weights: dict[str, int], what: str) -> None:
        for cls, w in weights.items():
            score[cls] = score.get(cls, 0) + w
        said.append(what)

    best_name: dict[str, tuple[int, str]] = {}
    for label in dict.fromkeys(_label(n) for n in e.names if n and _label(n)):
        for pattern, weights, what in NAME_RULES:
            if pattern.search(label):
                for cls, w in weights.items():
                    if w > best_name.get(cls, (0, ""))[0]:
                        best_name[cls] = (w, f"name {label}: {what}")
    for cls, (w, what) in best_name.items():
        vote({cls: w}, what)
    if e.gateway:
        vote(*GATEWAY)
    if e.vendor:
        for pattern, weights, what in VENDOR_RULES:
            if pattern.search(e.vendor):
                vote(weights, f"vendor {e.vendor[:40]}: {what}")
                break
    if e.ttl is not None and (start := _initial_ttl(e.ttl)) is not None:
        weights, what = TTL_RULES[start]
        vote(weights, f"TTL {e.ttl}: {what}")
    if e.netbios:
        vote(*NETBIOS)
    if e.random_mac:
        vote(*RANDOM_MAC)
    best_port: dict[str, int] = {}
    for port in sorted(p for p in e.ports if p in PORT_RULES):
        weights, what = PORT_RULES[port]
        for cls, w in weights.items():
            best_port[cls] = max(best_port.get(cls, 0), w)
        said.append(f"port {port} open: {what}")
    for cls, w in best_port.items():
        score[cls] = score.get(cls, 0) + w
    ranked = sorted(score.items(), key=lambda kv: -kv[1])
    top = ranked[0] if ranked else ("unsure", 0)
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    cls = top[0] if top[1] >= SURE_SCORE and top[1] - runner_up >= SURE_MARGIN else "unsure"
    text = "; ".join(said) or "no vendor, name or answer to go on"
    return cls, text[:MAX_EVIDENCE]


def device_class(vendor: str | None, name: str | None = None, *, locally_administered: bool = False,
                 is_gateway: bool = False, ttl: int | None = None, netbios: bool = False,
                 ports: frozenset[int] | set[int] = frozenset()) -> str:
    """The class alone, from keyword arguments (see :func:`classify`)."""
    return classify(Evidence(vendor, (name,) if name else (), locally_administered, is_gateway, ttl, netbios,
                             frozenset(ports)))[0]
