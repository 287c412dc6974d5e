"""Access models: keys, a user's status, key rotation, the audit log (API.md "Keys, suspension,
limits, audit"). None of them carries a key's hash; only a new key's answer carries the key."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field

from actors.audit_log import ACTIONS

AuditAction = Enum("AuditAction", {action: action for action in ACTIONS}, type=str)


class KeyCreatedData(BaseModel):
    username: str
    key_id: str = Field(description="the key's public id (at most 16 characters)")
    api_key: str = Field(description="shown only in this answer")


class RotatedKeyData(BaseModel):
    key_id: str
    api_key: str = Field(description="shown only in this answer; the calling key is revoked")


class KeyData(BaseModel):
    key_id: str
    created_at: str
    last_used_at: str | None = Field(description="updated within 5 s of a use")
    revoked_at: str | None


class UserData(BaseModel):
    username: str
    status: Literal["active", "suspended"]
    created_at: str
    keys: list[KeyData] = Field(description="every key, revoked ones included, oldest first")


class AuditEntry(BaseModel):
    id: int
    timestamp: str
    actor: str = Field(description='"admin" or the username that acted (a key rotation)')
    action: AuditAction
    target: str = Field(description="a username, key id or asset id")
    details: dict[str, Any]


class AuditLogData(BaseModel):
    entries: list[AuditEntry]
    total_count: int
    has_more: bool
