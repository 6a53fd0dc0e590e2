#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ (Python 3 standard library only).

decode: three control bytes (version 0=3.1 1=3.1.1 2=5.0, maximum-size selector, chunking seed)
followed by hand-written packets of every type, spelled out byte by byte below.
roundtrip: inputs that steer `arbitrary` to each (version, packet variant) pair.

Run from anywhere: python3 fuzz/seeds/make_seeds.py
"""

import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent


def u16(n):
    return struct.pack(">H", n)


def s(text):
    """A length-prefixed UTF-8 string or binary field."""
    raw = text if isinstance(text, bytes) else text.encode()
    return u16(len(raw)) + raw


def var_int(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + var_int(len(body)) + body


def props(raw):
    return var_int(len(raw)) + raw


V3_1, V3_1_1, V5 = 0, 1, 2

# CONNECT flags: username 0x80, password 0x40, will retain 0x20, will QoS << 3, will 0x04,
# clean start 0x02.
FULL_CONNECT_FLAGS = 0x80 | 0x40 | 0x20 | (1 << 3) | 0x04 | 0x02

DECODE = {
    # 3.1
    "v31_connect": (V3_1, packet(0x10, s("MQIsdp") + b"\x03\x02" + u16(60) + s("c1"))),
    "v31_connack": (V3_1, packet(0x20, b"\x00\x00")),
    "v31_publish_qos1": (V3_1, packet(0x32, s("a/b") + u16(7) + b"hello")),
    # 3.1.1
    "v311_connect": (V3_1_1, packet(0x10, s("MQTT") + b"\x04\x02" + u16(60) + s("c1"))),
    "v311_connect_full": (
        V3_1_1,
        packet(
            0x10,
            s("MQTT") + bytes([4, FULL_CONNECT_FLAGS]) + u16(30) + s("client-1")
            + s("will/topic") + s(b"gone") + s("user") + s(b"secret"),
        ),
    ),
    "v311_connack": (V3_1_1, packet(0x20, b"\x01\x00")),
    "v311_publish_qos0": (V3_1_1, packet(0x30, s("sensors/kitchen") + b"21.5")),
    "v311_publish_qos2_dup_retain": (V3_1_1, packet(0x3D, s("a") + u16(0xFFFF) + b"")),
    "v311_puback": (V3_1_1, packet(0x40, u16(1))),
    "v311_pubrec": (V3_1_1, packet(0x50, u16(2))),
    "v311_pubrel": (V3_1_1, packet(0x62, u16(3))),
    "v311_pubcomp": (V3_1_1, packet(0x70, u16(4))),
    "v311_subscribe": (V3_1_1, packet(0x82, u16(5) + s("a/+") + b"\x01" + s("b/#") + b"\x02")),
    "v311_suback": (V3_1_1, packet(0x90, u16(5) + b"\x01\x80")),
    "v311_unsubscribe": (V3_1_1, packet(0xA2, u16(6) + s("a/+"))),
    "v311_unsuback": (V3_1_1, packet(0xB0, u16(6))),
    "v311_pingreq": (V3_1_1, packet(0xC0, b"")),
    "v311_pingresp": (V3_1_1, packet(0xD0, b"")),
    "v311_disconnect": (V3_1_1, packet(0xE0, b"")),
    # 5.0
    "v5_connect": (
        V5,
        packet(
            0x10,
            s("MQTT") + bytes([5, FULL_CONNECT_FLAGS]) + u16(30)
            + props(b"\x11" + struct.pack(">I", 10) + b"\x21" + u16(20))  # session expiry, receive max
            + s("client-1")
            + props(b"\x18" + struct.pack(">I", 5))  # will delay interval
            + s("will/topic") + s(b"gone") + s("user") + s(b"secret"),
        ),
    ),
    "v5_connack": (V5, packet(0x20, b"\x00\x00" + props(b"\x24\x01"))),  # maximum QoS 1
    "v5_publish_props": (
        V5,
        packet(0x32, s("a/b") + u16(9) + props(b"\x01\x01" + b"\x23" + u16(3)) + b"{}"),
    ),
    "v5_publish_alias_only": (V5, packet(0x30, s("") + props(b"\x23" + u16(3)) + b"x")),
    "v5_puback_reason": (V5, packet(0x40, u16(1) + b"\x10")),
    "v5_puback_props": (V5, packet(0x40, u16(1) + b"\x80" + props(b"\x1F" + s("no")))),
    "v5_pubrel": (V5, packet(0x62, u16(3) + b"\x92" + props(b""))),
    "v5_subscribe": (V5, packet(0x82, u16(5) + props(b"\x0B\x07") + s("a/+") + b"\x2D")),
    "v5_suback": (V5, packet(0x90, u16(5) + props(b"") + b"\x01\x87")),
    "v5_unsubscribe": (V5, packet(0xA2, u16(6) + props(b"") + s("a/#"))),
    "v5_unsuback": (V5, packet(0xB0, u16(6) + props(b"") + b"\x00\x11")),
    "v5_disconnect": (V5, packet(0xE0, b"\x04" + props(b""))),
    "v5_auth": (V5, packet(0xF0, b"\x18" + props(b"\x15" + s("SCRAM")))),
}

# Several packets in one stream, and half a packet at the end.
STREAM = (
    DECODE["v311_connack"][1] + DECODE["v311_publish_qos0"][1] + DECODE["v311_puback"][1]
    + DECODE["v311_pingresp"][1] + DECODE["v311_publish_qos0"][1][:5]
)


def roundtrip_seed(version, variant, filler):
    """Bytes that make `arbitrary` pick ProtocolVersion `version` and Packet variant `variant`.

    A derived enum reads a little-endian u32 x and takes variant (x * count) >> 32; the filler
    then sets the fields.
    """
    def pick(index, count):
        return struct.pack("<I", -(-(index << 32) // count))

    return pick(version, 3) + pick(variant, 15) + filler


# Even bytes leave every optional field (properties among them) empty; odd ones fill them.
PLAIN = bytes(range(2, 130, 2))
RICH = bytes(range(1, 65))


def main():
    decode = HERE / "decode"
    decode.mkdir(exist_ok=True)
    for i, (name, (version, raw)) in enumerate(sorted(DECODE.items())):
        # Vary the size limit and the chunking across seeds.
        control = bytes([version, 0, (i * 37) & 0xFF])
        (decode / name).write_bytes(control + raw)
    (decode / "v311_stream").write_bytes(bytes([V3_1_1, 0, 0]) + STREAM)
    (decode / "v311_small_limit").write_bytes(bytes([V3_1_1, 2 | (8 << 2), 3]) + STREAM)

    roundtrip = HERE / "roundtrip"
    roundtrip.mkdir(exist_ok=True)
    for version in range(3):
        for variant in range(15):
            for kind, filler in (("plain", PLAIN), ("rich", RICH)):
                (roundtrip / f"v{version}_variant{variant:02}_{kind}").write_bytes(
                    roundtrip_seed(version, variant, filler)
                )


if __name__ == "__main__":
    main()
