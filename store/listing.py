"""Listing rows for the admin API and the CLI: one query shape for every table."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

Row = TypeVar("Row")


def by_id(model: type[Row], **equal: Any) -> Select[tuple[Row]]:
    """Rows of `model` in id order where each named column equals its value (a None value
    does not filter), for the caller to narrow further."""
    query = select(model).order_by(model.id)  # type: ignore[attr-defined]
    for column, value in equal.items():
        if value is not None:
            query = query.where(getattr(model, column) == value)
    return query


def list_rows(session: Session, model: type[Row], **equal: Any) -> list[Row]:
    """`by_id(model, **equal)`, run."""
    return list(session.scalars(by_id(model, **equal)))
