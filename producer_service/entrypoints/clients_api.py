"""Operator endpoints for clients: register, issue tokens, revoke, list."""

from flask import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from shared_adapters.access import protect
from shared_adapters.bodies import json_body, load_body
from shared_adapters.errors import ApiError
from shared_adapters.openapi import CLIENT_ID, PLAIN_TEXT
from shared_domain.identity import CLIENT, OPERATOR, AlreadyRegistered, NotRegistered
from shared_domain.message import client_id_problem, unsafe_text_problem
from shared_domain.schemas import rule

from .services import services

bp = Blueprint("clients", __name__)
protect(bp, OPERATOR)
TEXT = [validate.Length(max=200), rule(unsafe_text_problem)]


class NewClientSchema(Schema):
    """Body of POST /clients."""

    class Meta:
        unknown = RAISE

    clientId = fields.String(required=True, validate=rule(client_id_problem), metadata=CLIENT_ID)
    name = fields.String(validate=TEXT, metadata=PLAIN_TEXT)
    label = fields.String(load_default="", validate=TEXT, metadata=PLAIN_TEXT)


class NewTokenSchema(Schema):
    """Body of POST /clients/<id>/tokens."""

    class Meta:
        unknown = RAISE

    label = fields.String(load_default="", validate=TEXT, metadata=PLAIN_TEXT)


class RevokeSchema(Schema):
    """Body of POST /clients/<id>/revoke: one token, or (without tokenId) the client."""

    class Meta:
        unknown = RAISE

    tokenId = fields.String(validate=validate.Length(1, 64))


@bp.get("/clients")
def list_clients():
    """Every client with its tokens' ids, labels and dates (never a token or a hash)."""
    return {"clients": services().identities.listing(CLIENT)}


@bp.post("/clients")
def add_client():
    """Register a client and issue its first token, shown in this answer only."""
    body = load_body(NewClientSchema(), json_body())
    try:
        services().identities.add(CLIENT, body["clientId"], body.get("name"))
    except AlreadyRegistered as error:
        raise ApiError(409, "already_registered", str(error)) from None
    token_id, token = services().identities.issue_token(CLIENT, body["clientId"], body["label"])
    return {"clientId": body["clientId"], "tokenId": token_id, "token": token}, 201


@bp.post("/clients/<client_id>/tokens")
def issue_token(client_id: str):
    """Issue another token for a client, shown in this answer only."""
    body = load_body(NewTokenSchema(), json_body())
    try:
        token_id, token = services().identities.issue_token(CLIENT, client_id, body["label"])
    except NotRegistered as error:
        raise ApiError(404, "not_found", str(error)) from None
    return {"clientId": client_id, "tokenId": token_id, "token": token}, 201


@bp.post("/clients/<client_id>/revoke")
def revoke(client_id: str):
    """Revoke one token of a client, or the client and every token it has."""
    body = load_body(RevokeSchema(), json_body())
    try:
        services().identities.revoke(CLIENT, client_id, body.get("tokenId"))
    except NotRegistered as error:
        raise ApiError(404, "not_found", str(error)) from None
    return {"clientId": client_id, "revoked": body.get("tokenId", "client")}
