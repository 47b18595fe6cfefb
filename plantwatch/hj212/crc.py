"""The HJ 212-2017 packet check (Appendix A of the standard).

The register starts at 0xFFFF; for each byte it is shifted right by 8 and XORed with the byte,
then goes through eight steps of: shift right by one, XOR 0xA001 if the bit shifted out was 1.
This is not CRC-16/MODBUS, which XORs the byte into the unshifted register.
"""

from __future__ import annotations


def crc16(data: bytes) -> int:
    """The check of a data segment."""
    register = 0xFFFF
    for byte in data:
        register = (register >> 8) ^ byte
        for _ in range(8):
            carry = register & 1
            register >>= 1
            if carry:
                register ^= 0xA001
    return register
