"""ad_impressions: each viewer's start and complete of a break, counted once

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.sqltypes import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ad_impressions",
        sa.Column("break_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=8), nullable=False),
        sa.Column("viewer", sa.String(length=40), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["break_id"], ["ad_breaks.id"], ondelete="CASCADE",
                                name=op.f("fk_ad_impressions_break_id_ad_breaks")),
        sa.PrimaryKeyConstraint("break_id", "event", "viewer",
                                name=op.f("pk_ad_impressions")),
        mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
    )


def downgrade() -> None:
    op.drop_table("ad_impressions")
