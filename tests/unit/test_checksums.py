"""The checksum math of S3 transfers against known vectors (the values S3 and the AWS CLI compute)."""

from __future__ import annotations

import pytest

from rentaliq.runtime.checksums import StoredChecksum, b64_crc32, crc32s_of_buffer, crc32s_of_stream, digest_b64, stored_checksum

# CRC32 ("123456789") = 0xCBF43926, the standard check value of CRC-32/ISO-HDLC (zlib's CRC).
CHECK_INPUT = b"123456789"


def test_whole_object_crc32_is_the_standard_check_value() -> None:
    assert crc32s_of_buffer(CHECK_INPUT, 4).full == 0xCBF43926
    assert b64_crc32(0xCBF43926) == "y/Q5Jg=="  # base64 of the big-endian bytes cb f4 39 26


def test_parts_are_cut_at_the_part_size_and_the_composite_is_the_crc_of_their_crcs() -> None:
    sums = crc32s_of_buffer(CHECK_INPUT, 4)
    # Parts "1234", "5678", "9": their CRC32s, from a reference CRC-32 calculator.
    assert sums.parts == [0x9BE3E0A3, 0x7E525607, 0x8D076785]
    # Composite: CRC32 of the bytes 9be3e0a3 7e525607 8d076785 = 0xfaf128e9, base64 of its big-endian bytes.
    assert sums.composite_b64 == "+vEo6Q=="


@pytest.mark.parametrize("piece", [1, 3, 4, 5, 1000])
def test_the_result_does_not_depend_on_how_the_data_is_fed(piece: int) -> None:
    data = bytes(range(256)) * 40
    reference = crc32s_of_buffer(data, 1000)

    class Trickle:  # a pipe-like stream: read() only, short reads
        def __init__(self) -> None:
            self.pos = 0

        def read(self, n: int = -1) -> bytes:
            chunk = data[self.pos : self.pos + min(piece, n if n > 0 else piece)]
            self.pos += len(chunk)
            return chunk

    streamed = crc32s_of_stream(Trickle(), 1000)
    assert (streamed.full, streamed.parts, streamed.size) == (reference.full, reference.parts, len(data))


def test_stored_checksums_are_parsed_as_s3_and_moto_spell_them() -> None:
    assert stored_checksum({"ChecksumCRC32": "y/Q5Jg==", "ChecksumType": "FULL_OBJECT"}) == StoredChecksum("CRC32", "y/Q5Jg==", None)
    assert stored_checksum({"ChecksumCRC32": "AAAAAA==-3", "ChecksumType": "COMPOSITE"}) == StoredChecksum("CRC32", "AAAAAA==", 3)
    # moto: composite value without the suffix; the part count comes from the multipart ETag.
    assert stored_checksum({"ChecksumCRC32": "AAAAAA==", "ETag": '"abc-2"'}) == StoredChecksum("CRC32", "AAAAAA==", 2)
    assert stored_checksum({"ETag": '"abc"'}) is None


def test_sha256_digest_of_a_known_input() -> None:
    head = {"ChecksumSHA256": "x", "ChecksumType": "FULL_OBJECT"}
    # SHA-256("abc") = ba7816bf 8f01cfea ... : the FIPS 180-2 example.
    assert digest_b64(head, b"abc") == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    assert digest_b64({"ChecksumCRC32": "x", "ChecksumType": "FULL_OBJECT"}, b"abc") is None
