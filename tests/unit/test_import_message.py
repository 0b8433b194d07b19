"""What the ``import_document`` actor makes of a message before reading the file: its name
and its base64 content, within RELANCE_IMPORT_MAX_BYTES."""

from __future__ import annotations

import base64

import pytest

from intake.upload import decoded, safe_name


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("facture.xml", "facture.xml"),
        ("exports/2026/facture.pdf", "facture.pdf"),
        ("C:\\ERP\\out\\relevé.xml", "relevé.xml"),
        ("../../etc/passwd", "passwd"),
        ("", None),
        ("..", None),
        ("dossier/", "dossier"),
        ("a\x00b.xml", None),
        ("é" * 128 + ".xml", None),  # 256 + 4 bytes in UTF-8: longer than 255
    ],
)
def test_a_file_is_written_under_the_last_part_of_its_name_only(sent, kept):
    """Given the name a producer sent, then the file is kept under its last part, never
    outside its folder, and a name that is none is refused."""
    assert safe_name(sent) == kept


def test_the_content_is_base64_within_the_limit():
    """Given 10 bytes in base64 (16 characters, line breaks allowed), then they are read
    under a limit of 10 and refused under a limit of 9, naming the setting; text that is
    not base64, or none, is refused as such."""
    content = base64.b64encode(b"0123456789").decode()
    assert decoded(content[:8] + "\n" + content[8:], 10) == (b"0123456789", None)
    assert decoded(content, 9) == (None, "file: larger than 9 bytes (RELANCE_IMPORT_MAX_BYTES)")
    assert decoded("%%%", 10) == (None, "file: content is not base64")
    assert decoded("", 10) == (None, "file: content is not base64")


def test_a_content_far_above_the_limit_is_refused_unread():
    """Given 4 000 base64 characters (3 000 bytes) under a limit of 100 bytes, then it is
    refused by its length alone: 100 bytes take at most 4 x 34 = 136 characters."""
    assert decoded("A" * 4000, 100) == (None, "file: larger than 100 bytes (RELANCE_IMPORT_MAX_BYTES)")
