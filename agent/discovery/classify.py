"""Device class guess from vendor and name: computer, printer (incl. scanners), phone,
network (routers, switches, access points, ISP modems) or unknown.

Pure heuristics over what the sweep already knows; a name (set by a person or the OS)
beats the vendor (which only says who made the network card)."""
from __future__ import annotations

import re

CLASSES = ("computer", "printer", "phone", "network", "unknown")

# Checked in this order; first match wins.
NAME_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("printer", re.compile(r"print|mfp|laserjet|officejet|deskjet|pixma|ecotank|scan|copier|photocopy|"
                           r"may-?in|mayin|ricoh|kyocera|konica|xerox|brn[0-9a-f]{6}|npi[0-9a-f]{6}|^hp[0-9a-f]{6}$|epson|canon",
                           re.I)),
    ("phone", re.compile(r"iphone|ipad|android|galaxy|redmi|xiaomi|oppo|vivo|realme|nokia|pixel|phone|"
                         r"dien-?thoai", re.I)),
    ("network", re.compile(r"router|gateway|switch|modem|\bap\b|access-?point|tplink|tp-link|mikrotik|unifi|"
                           r"draytek|huawei-?hg|zte-?f|gpon|ont\b|onu\b", re.I)),
    ("computer", re.compile(r"desktop|laptop|notebook|\bpc\b|pc-|-pc|workstation|thinkpad|macbook|imac|"
                            r"may-?tinh|maytinh|ketoan|van-?thu|vanthu|tiep-?dan|mot-?cua|\bwin|ubuntu", re.I)),
)

# Vendor words (lower case) whose network cards are nearly always in that kind of device.
VENDOR_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("printer", ("brother", "seiko epson", "canon", "kyocera", "ricoh", "konica minolta", "xerox",
                 "fujifilm business", "lexmark", "oki data", "toshiba tec", "zebra", "pantum", "sindoh",
                 "sharp")),
    ("network", ("cisco", "tp-link", "tenda", "mikrotik", "routerboard", "ubiquiti", "juniper", "aruba",
                 "d-link", "netgear", "zyxel", "draytek", "ruijie", "h3c", "totolink", "fortinet", "linksys",
                 "mercusys", "zte", "huawei technologies", "nokia shanghai bell", "alcatel-lucent",
                 "dasan", "gcom", "fiberhome", "sophos", "edgecore", "aruba", "grandstream", "cambium")),
    ("phone", ("xiaomi", "oppo", "vivo mobile", "realme", "oneplus", "huawei device", "honor device",
               "motorola mobility", "hmd global", "samsung electronics", "guangdong oppo", "sony mobile",
               "transsion", "zte mobile")),
    ("computer", ("intel", "dell", "lenovo", "asustek", "micro-star", "giga-byte", "asrock", "acer",
                  "liteon", "lite-on", "azurewave", "hon hai", "foxconn", "elitegroup", "biostar",
                  "raspberry pi", "fujitsu", "microsoft", "realtek", "apple", "toshiba", "vmware", "qemu",
                  "parallels")),
    # Not listed: HP (its prefixes are on PCs and printers alike; names tell them apart).
)


def device_class(vendor: str | None, name: str | None = None, *, locally_administered: bool = False,
                 is_gateway: bool = False) -> str:
    """Best guess of what a device is. ``is_gateway``: it is this subnet's default router."""
    if name:
        label = name.split(".")[0]  # host part of a DNS name
        for cls, pattern in NAME_HINTS:
            if pattern.search(label):
                return cls
    if is_gateway:
        return "network"
    if vendor:
        v = vendor.lower()
        for cls, words in VENDOR_HINTS:
            if any(w in v for w in words):
                return cls
    if locally_administered:
        # Android >= 10 and iOS >= 14 use a random, locally administered MAC per Wi-Fi network.
        return "phone"
    return "unknown"
