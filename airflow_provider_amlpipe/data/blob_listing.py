"""List Blobs, parsed with ElementTree instead of the SDK's generic model deserializer.

``ContainerClient.list_blobs`` turns every entry of the service's XML answer into generated model
objects, field by field: about half a millisecond of CPU per blob, so a listing of a few dozen
blobs costs more than the round trip, and on a transfer's critical path (nothing is copied before
the source is listed). This sends the same ``List Blobs`` request through the client's own pipeline
(its credential, retries, SAS and API version) and reads only the fields a datastore needs.

The request goes through the generated client's ``_send_request`` (the SDK keeps it private): when
that is missing, or the answer is anything but a ``200`` this parser understands, :func:`list_blobs`
returns ``None`` and the caller lists through the SDK as before, which also raises its usual errors.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from azure.core.rest import HttpRequest
from azure.storage.blob import ContainerClient


@dataclass(frozen=True)
class ListedBlob:
    """What one entry of a listing says about a blob."""

    name: str
    size: int
    etag: str
    #: Seconds since the epoch (0.0 when the entry has no Last-Modified).
    modified: float
    #: Hex, or ``None`` when the blob has no Content-MD5.
    content_md5: str | None
    metadata: dict[str, str] = field(default_factory=dict)


class _Unexpected(Exception):
    """An answer this parser does not understand: list through the SDK instead."""


def list_blobs(container: ContainerClient, prefix: str, page_size: int | None = None) -> list[ListedBlob] | None:
    """Every blob whose name starts with ``prefix``, with its metadata; ``None``: use the SDK instead.

    ``page_size``: at most this many blobs per request (the service's own limit, 5000, when ``None``).
    """
    send = getattr(getattr(container, "_client", None), "_send_request", None)
    if send is None:
        return None
    base = container.url
    base += "&" if "?" in base else "?"  # the container's SAS, if any, stays in the URL
    found: list[ListedBlob] = []
    marker = ""
    while True:
        query = f"restype=container&comp=list&include=metadata&prefix={quote(prefix, safe='')}"
        if marker:
            query += f"&marker={quote(marker, safe='')}"
        if page_size is not None:
            query += f"&maxresults={page_size}"
        # The generated operations set the API version per request; a bare request must say it too.
        request = HttpRequest("GET", base + query, headers={"x-ms-version": container.api_version})
        response = send(request)
        if response.status_code != 200:
            return None
        try:
            marker = _parse(response.read(), found)
        except (_Unexpected, ET.ParseError, ValueError, TypeError, binascii.Error):
            return None
        if not marker:
            return found


def _parse(body: bytes, found: list[ListedBlob]) -> str:
    """Add the page's blobs to ``found``; the next page's marker (empty on the last page)."""
    root = ET.fromstring(body)
    blobs = root.find("Blobs")
    if root.tag != "EnumerationResults" or blobs is None:
        raise _Unexpected(root.tag)
    for entry in blobs.iterfind("Blob"):
        name_node, props = entry.find("Name"), entry.find("Properties")
        if name_node is None or props is None:
            raise _Unexpected("a blob without a name or properties")
        name = name_node.text or ""
        if name_node.get("Encoded") == "true":  # names with characters XML cannot carry are URL-encoded
            name = unquote(name)
        etag, size = props.findtext("Etag"), props.findtext("Content-Length")
        if etag is None or size is None:
            raise _Unexpected("a blob without an ETag or a size")
        modified = props.findtext("Last-Modified")
        md5 = props.findtext("Content-MD5")
        meta = entry.find("Metadata")
        found.append(
            ListedBlob(
                name=name,
                size=int(size),
                etag=etag,
                modified=parsedate_to_datetime(modified).timestamp() if modified else 0.0,
                content_md5=base64.b64decode(md5, validate=True).hex() if md5 else None,
                metadata={} if meta is None else {child.tag: child.text or "" for child in meta},
            )
        )
    return root.findtext("NextMarker") or ""
