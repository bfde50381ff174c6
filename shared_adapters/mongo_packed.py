"""Documents kept whole as one BSON value beside their _id, for collections read and written only by _id.

A view or a page of messages holds hundreds of values, and FerretDB v1 decodes and encodes every one
of them, with its type, at each lookup and each replace: most of its CPU per event of the views
projector. Packed, the store handles one binary value per document; the driver packs and unpacks
it in C. Nothing may query such a collection by any field but `_id`.
"""

import bson
from bson.binary import Binary
from pymongo.collection import Collection

from .mongo_client import DECODING

BODY = "b"


def pack(document: dict) -> dict:
    """The document as stored: its _id and the rest as one BSON value."""
    body = {field: value for field, value in document.items() if field != "_id"}
    return {"_id": document["_id"], BODY: Binary(bson.encode(body))}


def unpack(stored: dict | None) -> dict | None:
    """The document a stored one holds (one written unpacked, by a version before packing, as it is)."""
    if stored is None or BODY not in stored:
        return stored
    return {"_id": stored["_id"], **bson.decode(stored[BODY], codec_options=DECODING)}


class PackedDocuments:
    """A collection of packed documents, by _id."""

    def __init__(self, collection: Collection):
        self._collection = collection

    def get(self, doc_id: str) -> dict | None:
        """The document of that _id, None when there is none."""
        return unpack(self._collection.find_one({"_id": doc_id}))

    def put(self, document: dict) -> None:
        """Write the document whole, in place of any of its _id."""
        self._collection.replace_one({"_id": document["_id"]}, pack(document), upsert=True)

    def keep_only(self, doc_ids: list[str]) -> None:
        """Delete every document whose _id is not among `doc_ids`."""
        self._collection.delete_many({"_id": {"$nin": doc_ids}})
