"""The models the revisions build (env.py's target_metadata)."""

import sqlalchemy as sa

metadata = sa.MetaData()

flows = sa.Table(
    "flows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("tags", sa.String(200)),
)

flow_runs = sa.Table(
    "flow_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("flow_id", sa.Integer, sa.ForeignKey("flows.id"), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Index("ix_flow_runs_flow_id", "flow_id"),
)
