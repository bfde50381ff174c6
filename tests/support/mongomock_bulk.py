"""mongomock's bulk writes as pymongo 4.20 calls them: its ReplaceOne passes a `sort` that mongomock 4.3 does not take."""

from mongomock.collection import BulkOperationBuilder

_add_replace = BulkOperationBuilder.add_replace


def _add_replace_unsorted(self, selector, doc, upsert, collation=None, hint=None, sort=None):
    """Replace as mongomock does; a sorted replace is not something the code under test asks for."""
    if sort is not None:
        raise NotImplementedError("mongomock cannot replace the first of a sort")
    _add_replace(self, selector, doc, upsert, collation=collation, hint=hint)


BulkOperationBuilder.add_replace = _add_replace_unsorted
