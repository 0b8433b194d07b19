"""XML parsing that trusts nothing in the file: no DTD, no entity, no network access."""

from __future__ import annotations

from lxml import etree

# A DTD may declare entities that expand into gigabytes or read local files and URLs: the
# parser loads none and resolves none, and a document that declares one is refused below.
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


class NotXml(ValueError):
    """The bytes are not a well-formed XML document this reader accepts; the message says why."""


def parse_xml(data: bytes) -> etree._Element:
    """The root element of ``data``, or NotXml."""
    try:
        tree = etree.fromstring(data, _PARSER).getroottree()
    except etree.XMLSyntaxError as exc:
        raise NotXml(f"not well-formed XML: {exc.msg}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise NotXml("a document type declaration (DOCTYPE) is refused")
    return tree.getroot()


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def namespace(element: etree._Element) -> str:
    return etree.QName(element).namespace or ""
