"""The chat's language kept with the chat (migration 0006): a database made before it is
migrated on start, its chats keep their steps and have no language yet (they speak their
app's until they next change state), and the model and the migration agree on the column.
And in core's chat use case: the language is kept when the member verifies, the member's choice
holds over their app's, and the chat's outcomes say which language to write them in."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from core.chat import Chats
from core.chat_io import Command, Contact, Press, Sender, Start
from core.db import MIGRATIONS, Database
from core.models import ChatState
from core.service import PointsService
from tests.core.points_harness import Env


def test_migration_0006_adds_the_language_and_keeps_the_chats(db_url: str) -> None:
    database = Database(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = database._write_engine if database.is_sqlite else database.engine
    with engine.connect() as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    with engine.connect() as connection, connection.begin():
        connection.execute(text(
            "INSERT INTO chat_state (channel_user, step, updated_at) "
            "VALUES ('u1', 'amount', '2026-01-01 00:00:00')"))
    database.dispose()
    service = PointsService(Env(db_url, None).settings(), db=Database(db_url))  # type: ignore[arg-type]
    try:
        with service.db.engine.connect() as connection:
            columns = {c["name"]: c for c in inspect(connection).get_columns("chat_state")}
            rows = connection.execute(text(
                "SELECT step, language FROM chat_state WHERE channel_user = 'u1'")).all()
        assert rows == [("amount", None)]
        model = ChatState.__table__.c.language  # type: ignore[attr-defined]
        assert columns["language"]["nullable"] and model.nullable
        assert columns["language"]["type"].length == model.type.length == 16
    finally:
        service.db.dispose()
    database = Database(db_url)
    engine = database._write_engine if database.is_sqlite else database.engine
    with engine.connect() as connection, connection.begin():
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
        assert "language" not in {c["name"] for c in
                                  inspect(connection).get_columns("chat_state")}
    database.dispose()


def test_the_chat_keeps_its_language_and_says_which_to_write_in(env: Env) -> None:
    service = env.service(default_language="en")
    member = env.add_member(service, points=900)
    assert member.mobile is not None
    chats = Chats(service)
    hindi = Sender("7001", "7001", language="hi-IN")
    # /start reads only: the app's language, nothing kept yet.
    assert chats.handle(hindi, "u1", Start()).language == "hi"
    assert chats.handle(hindi, "u2", Contact(member.mobile.lstrip("+"), own=True)
                        ).language == "hi"
    with service.db.engine.connect() as connection:
        kept = connection.execute(text(
            "SELECT language FROM chat_state WHERE channel_user = '7001'")).scalar()
    assert kept == "hi"  # kept when the member verified
    # The member picks English; the app still says Hindi: the choice holds.
    picked = chats.handle(hindi, "u3", Press("l:en"))
    assert picked.language == "en" and picked.replies[0].key == "language_set"
    assert chats.handle(hindi, "u4", Command("balance")).language == "en"
    # An unknown language is not taken.
    assert chats.handle(hindi, "u5", Command("language", ("xx",))).replies[0].key == \
        "language_ask"
    assert chats.handle(hindi, "u6", Command("balance")).language == "en"
    # A stranger whose app names no shipped language: DEFAULT_LANGUAGE.
    assert chats.handle(Sender("7002", language="fr"), "u7", Start()).language == "en"
