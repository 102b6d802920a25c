"""Request and response models of the dashboard's own routes: the key's workspaces and churn contacts."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from services.api.schemas import EntityId, WorkspaceRef, _printable

MAX_CONTACT_USERS = 1000


class WorkspaceList(BaseModel):
    workspaces: list[WorkspaceRef] = Field(description="The workspaces the API key may read, by external id.")


Note = Annotated[str, StringConstraints(max_length=500), AfterValidator(_printable)]


class ChurnContactRequest(BaseModel):
    workspace_id: EntityId = Field(description="The workspace's UUID or external id.")
    user_ids: list[EntityId] = Field(min_length=1, max_length=MAX_CONTACT_USERS,
                                     description="Users (UUIDs or external ids) scored on the latest churn date.")
    note: Note | None = Field(default=None, description="Kept with each contact, e.g. the channel used.")


class ChurnContactsMarked(BaseModel):
    workspace: WorkspaceRef
    prediction_date: dt.date = Field(description="The churn scoring date the contacts answer.")
    marked: int = Field(description="Users newly marked as contacted.")
    already_marked: int = Field(description="Users already marked for this scoring date (unchanged).")


class ChurnContact(BaseModel):
    user_id: uuid.UUID
    user_external_id: str | None
    contacted_at: dt.datetime
    prediction_date: dt.date
    note: str | None
    contacted_by: str | None = Field(description="The name of the API key that marked the user.")


class ChurnContactList(BaseModel):
    workspace: WorkspaceRef
    contacts: list[ChurnContact] = Field(description="The latest contact of each contacted user, newest first.")
