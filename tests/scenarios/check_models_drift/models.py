"""The application's models; they have moved on since the last revision."""

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Widened in the model only: no revision does it.
    email: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    active: Mapped[bool] = mapped_column(nullable=False, server_default=sa.true())
    # Added in the model only.
    nickname: Mapped[str | None] = mapped_column(sa.String(40))
