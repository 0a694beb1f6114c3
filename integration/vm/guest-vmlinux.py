#!/usr/bin/env python3
"""guest-vmlinux.py BZIMAGE OUT: writes the uncompressed kernel inside a
bzImage to OUT if it is an ELF with a PVH entry note (Xen note type 18,
XEN_ELFNOTE_PHYS32_ENTRY), which QEMU's -kernel boots directly: no
decompressor runs in the guest. Exit status 1, OUT absent, otherwise.

The payload's place comes from the boot protocol's setup header (2.08+):
setup_sects at 0x1f1, payload_offset and payload_length at 0x248 and 0x24c,
relative to the protected-mode code after the setup sectors.
"""
import gzip
import lzma
import os
import shutil
import struct
import subprocess
import sys


def payload(image):
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        raise ValueError("not a bzImage (no HdrS setup header)")
    version = struct.unpack_from("<H", image, 0x206)[0]
    if version < 0x208:
        raise ValueError(f"boot protocol {version:#x} has no payload fields")
    setup_sects = image[0x1F1] or 4
    start = (setup_sects + 1) * 512
    offset, length = struct.unpack_from("<II", image, 0x248)
    return image[start + offset:start + offset + length]


def decompress(data):
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)
    if data.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=__import__("io").BytesIO(data)).read()
    tools = [(b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"]), (b"\x02\x21\x4c\x18", ["lz4", "-dcq"])]
    for magic, command in tools:
        if data.startswith(magic):
            if shutil.which(command[0]) is None:
                raise ValueError(f"{command[0]} is not installed")
            return subprocess.run(command, input=data, stdout=subprocess.PIPE, check=True).stdout
    raise ValueError(f"unknown compression (magic {data[:4].hex()})")


def has_pvh_note(elf):
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return False
    phoff = struct.unpack_from("<Q", elf, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        at, end = p_offset, p_offset + p_filesz
        while at + 12 <= end:
            namesz, descsz, kind = struct.unpack_from("<III", elf, at)
            name = elf[at + 12:at + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and kind == 18:
                return True
            at += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


def main():
    source, out = sys.argv[1], sys.argv[2]
    try:
        with open(source, "rb") as f:
            elf = decompress(payload(f.read()))
    except (OSError, ValueError, lzma.LZMAError, subprocess.CalledProcessError) as error:
        print(f"guest-vmlinux: {source}: {error}", file=sys.stderr)
        return 1
    if not has_pvh_note(elf):
        print(f"guest-vmlinux: {source}: its kernel has no PVH entry note", file=sys.stderr)
        return 1
    with open(out + ".tmp", "wb") as f:
        f.write(elf)
    os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
