"""edXML (QCVN 102:2016/BTTTT): the package format official documents travel in.

    package = parse(stream, blobs, max_bytes=...)   # DocumentPackage | StatusPackage
    data = document_event(package)                 # or status_event(...)
    package = package_from_event(data)
    for chunk in build(package, blobs): ...        # edXML bytes, streamed

Attachments are decoded into a `BlobStore` while parsing and streamed back
from it while building; neither side holds a whole attachment in memory.
contracts/edxml/edxml.xsd describes what `build` writes and
contracts/edxml/DEVIATIONS.md what `parse` tolerates beyond it.
"""

from hub.connectors.edxml.blobs import BlobRef, BlobStore, BlobWriter, FileBlobStore
from hub.connectors.edxml.build import build
from hub.connectors.edxml.events import (
    SENT,
    STATUS,
    document_event,
    event_data,
    package_from_event,
    status_event,
)
from hub.connectors.edxml.model import (
    DSIG_NS,
    NS,
    AttachmentRef,
    Business,
    BusinessDocType,
    DocumentHeader,
    DocumentPackage,
    EdDate,
    Organization,
    Package,
    StatusPackage,
)
from hub.connectors.edxml.parse import parse

__all__ = [
    "DSIG_NS",
    "NS",
    "SENT",
    "STATUS",
    "AttachmentRef",
    "BlobRef",
    "BlobStore",
    "BlobWriter",
    "Business",
    "BusinessDocType",
    "DocumentHeader",
    "DocumentPackage",
    "EdDate",
    "FileBlobStore",
    "Organization",
    "Package",
    "StatusPackage",
    "build",
    "document_event",
    "event_data",
    "package_from_event",
    "parse",
    "status_event",
]
