"""`loyalty-bot sandbox`: the bot in this terminal, for staff and for anyone new to it.

The same python-telegram-bot `Application` and handlers as production
(`bot.sandbox.build_sandbox_application`, which calls `bot.app.build_application`), run
the way `loyalty-bot run` runs them (long polling, updates processed by the application's
own update processor), with the Bot API answered inside this process by
`bot.standin.StandInRequest`: no token, no network. The engine decides everything; this
module only turns what the staff user types into the updates Telegram would deliver, and
shows what the bot sent back.

- Its own SQLite database, `sandbox-data/terminal.db` (fresh on every start; `--keep`
  reuses it), seeded with the demo members of `bot.demo` through the engine. The
  directory is created readable by its owner only (0700), the database files 0600.
- The staff user is one Telegram user, in STAFF_TELEGRAM_IDS, who plays a demo member:
  picked at the start, switched with `/as MOBILE` or `/as N` (the bot's sandbox command;
  `/forget` unlinks, to try a first visit with /start and the contact button).
  Validation codes arrive in the chat (the `chat` channel). `/reset` reseeds (the bot's
  sandbox command too); `/demo` lists the members.
- The bot's buttons are shown as lettered choices, `[a]`, `[b]`...: typing the letter
  presses the button (an inline button sends its callback query; a keyboard button sends
  its text; the request_contact button shares the played member's own contact). Letters,
  not numbers: digits typed are always text, so an amount or a validation code is never
  taken for a button. `'a` sends the text a.
- Terminal commands: `/contact [NUMBER]` shares a contact as your own (the played member's,
  or any number, say one not in the program for 816); `/quit` (or Ctrl-C, or end of input)
  leaves, closing the application and the database. Ctrl-C works even when the sandbox was
  started with SIGINT ignored (a background job): it restores the handler at start.
- Colours (ANSI) unless NO_COLOR is set, TERM is dumb, or stdout is not a terminal. The
  log goes to `sandbox-data/sandbox.log`, not the screen.

The loop: the application runs on an asyncio loop in a background thread; the main
thread reads lines (`input`, with readline when there is one), queues the update on the
stand-in for the application's getUpdates, waits until the application has fetched it and
has nothing queued or running, then prints the messages the bot sent meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

from bot import demo
from bot.app import ALLOWED_UPDATES
from bot.sandbox import build_sandbox_application, private_directory, sandbox_overrides
from bot.senders import make_senders
from bot.settings import BotSettings, load_bot_settings
from bot.standin import BotMessage, Button, StandInRequest
from core.chat import Chats
from core.service import MemberView, PointsService
from core.status import CATALOGUE, SUCCESS, PointsError

log = logging.getLogger(__name__)
T = TypeVar("T")
TERMINAL_USER_ID = 5550001  # the staff user's Telegram id in the terminal
TERMINAL_USER_NAME = "Staff"
BOT_TIMEOUT = 60.0  # seconds to wait for the bot to finish with one update
DATABASE_FILE = "terminal.db"
LOG_FILE = "sandbox.log"
_CODE_LINE = re.compile(r"^(\d{3,4}) (.*)$")
_VALIDATION_CODE = re.compile(r"(validation code is )(\d+)")
_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
         "magenta": "35", "cyan": "36"}


# ---------------------------------------------------------------- looks


def choice_letter(index: int) -> str:
    """The letter a button is chosen by: a, b, ... z, then aa, ab, ..."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return letters[index] if index < 26 else letters[index // 26 - 1] + letters[index % 26]


def choice_index(text: str) -> int | None:
    """Which button a typed letter chooses (any case), or None when it is not a letter
    choice; digits never are."""
    typed = text.strip().lower()
    if not typed.isascii() or not typed.isalpha() or len(typed) > 2:
        return None
    if len(typed) == 1:
        return ord(typed) - ord("a")
    return (ord(typed[0]) - ord("a") + 1) * 26 + ord(typed[1]) - ord("a")


class Style:
    """ANSI colours, or none. `prompt` wraps them for readline, which must not count them
    in the prompt's width."""

    def __init__(self, enabled: bool, readline: bool = False) -> None:
        self.enabled = enabled
        self.readline = readline

    @classmethod
    def detect(cls, stream: IO[str]) -> Style:
        no_color = bool(os.environ.get("NO_COLOR"))
        dumb = os.environ.get("TERM") == "dumb"
        return cls(stream.isatty() and not no_color and not dumb)

    def __call__(self, text: str, *names: str) -> str:
        if not self.enabled or not names:
            return text
        return f"\033[{';'.join(_ANSI[n] for n in names)}m{text}\033[0m"

    def prompt(self, text: str, *names: str) -> str:
        if not self.enabled or not names:
            return text
        start = f"\033[{';'.join(_ANSI[n] for n in names)}m"
        if self.readline:
            return f"\001{start}\002{text}\001\033[0m\002"
        return f"{start}{text}\033[0m"


@dataclass(frozen=True)
class Choice:
    """A lettered button on screen: under a message (inline) or on the keyboard."""

    button: Button
    message_id: int = 0  # the message an inline button is under; 0 for the keyboard

    @property
    def inline(self) -> bool:
        return self.message_id != 0


# ---------------------------------------------------------------- the session


class SandboxTerminal:
    """One terminal session: the application, the stand-in Bot API, the staff user."""

    def __init__(self, settings: BotSettings, service: PointsService, database: Path,
                 data_dir: Path, fresh: bool, out: IO[str] = sys.stdout,
                 style: Style | None = None) -> None:
        self.service = service
        self.database = database
        self.data_dir = data_dir
        self.fresh = fresh
        self.out = out
        self.style = style or Style(False)
        self.stand_in = StandInRequest(bot_username="LoyaltySandboxBot",
                                       bot_name="Loyalty Points (sandbox)")
        self.application = build_sandbox_application(settings, service, self.stand_in,
                                                     mark="")
        self.user = self.stand_in.user(TERMINAL_USER_ID, TERMINAL_USER_NAME)
        self.chats = Chats(service)
        self.member: MemberView | None = None
        self.choices: list[Choice] = []
        self.keyboard: list[list[Button]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sandbox-bot",
                                       daemon=True)
        self.started = False

    # -- the application's life

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the bot's loop and wait for it here."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.call(self._start(), timeout=60)
        self.started = True

    async def _start(self) -> None:
        """What `Application.run_polling` does when it starts, in its order."""
        app = self.application
        await app.initialize()
        if app.post_init is not None:
            await app.post_init(app)
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1,
                                        allowed_updates=ALLOWED_UPDATES,
                                        drop_pending_updates=True)
        await app.start()

    async def _stop(self) -> None:
        """What `Application.run_polling` does when it stops, in its order."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
            if app.post_stop is not None:
                await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)

    def close(self) -> None:
        """Stop the application, its loop and the database (safe to call once started or
        not)."""
        if self.thread.is_alive():
            try:
                self.call(self._stop(), timeout=20)
            except Exception:
                log.exception("the application did not stop cleanly")
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()
        self.service.close()

    # -- talking to the bot

    def deliver(self, update: dict[str, Any]) -> list[BotMessage]:
        """Queue `update` for the application's getUpdates; wait until it is handled; the
        messages the bot sent to this chat meanwhile."""
        mark = self.stand_in.mark()
        self.stand_in.put_update(update)
        finished = self.call(self._settle(update["update_id"], mark), timeout=BOT_TIMEOUT + 10)
        if not finished:
            self.say(self.style("(the bot is still working on that; its answer will show "
                                "with the next one)", "yellow"))
        return self.stand_in.messages_since(mark, self.user.id)

    async def _settle(self, update_id: int, mark: int) -> bool:
        """Wait until getUpdates has handed `update_id` to the application and the
        application has no update queued or in progress (three looks in a row)."""
        deadline = time.monotonic() + BOT_TIMEOUT
        app = self.application
        while not self._fetched(update_id, mark):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                return False
            busy = (not app.update_queue.empty()
                    or app.update_processor.current_concurrent_updates > 0)
            quiet = 0 if busy else quiet + 1
            await asyncio.sleep(0.01)
        return True

    def _fetched(self, update_id: int, mark: int) -> bool:
        for call in self.stand_in.calls[mark:]:
            if call.method == "getUpdates" and isinstance(call.result, list) and any(
                    item.get("update_id") == update_id for item in call.result):
                return True
        return False

    def send_text(self, text: str, echo: str | None = None) -> None:
        if echo:
            self.say(self.style(f"  ↳ {echo}", "dim"))
        self.show(self.deliver(self.user.says(text)))

    def share_contact(self, phone: str, whose: str) -> None:
        self.say(self.style(f"  ↳ shared my contact {phone} ({whose})", "dim"))
        self.show(self.deliver(self.user.shares_contact(phone.lstrip("+"))))

    def press(self, choice: Choice) -> None:
        button = choice.button
        if not choice.inline:
            if button.request_contact:
                if self.member is None or not self.member.mobile:
                    self.say("No member to share the contact of: pick one with /as N.")
                    return
                self.share_contact(self.member.mobile, self.member.name or "the member")
                return
            self.send_text(button.text, echo=button.text)
            return
        message = next((m for m in self.stand_in.messages(self.user.id)
                        if m.message_id == choice.message_id), None)
        if message is None or button.callback_data is None or all(
                b.callback_data != button.callback_data for row in message.buttons for b in row):
            self.say("That button is no longer there.")
            return
        self.say(self.style(f"  ↳ pressed {button.text}", "dim"))
        self.show(self.deliver(self.user.sends_callback(message, button.callback_data)))

    def refresh_member(self) -> None:
        """Who the staff user plays now: the member their account is linked to, as the
        engine has it; unlinked (/forget), the member they played last."""
        member_id = self.chats.member_id(str(TERMINAL_USER_ID))
        if member_id is None:
            return
        with contextlib.suppress(PointsError):
            self.member = self.service.member(member_id)

    # -- showing

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def show(self, messages: list[BotMessage]) -> None:
        """The bot's messages, set apart, with their buttons lettered; then the keyboard."""
        s = self.style
        self.refresh_member()
        self.choices = []
        if not messages:
            self.say(s("  (the bot sent nothing)", "dim"))
        for message in messages:
            for number, line in enumerate(message.text.splitlines() or [""]):
                lead = s("  bot ┃ ", "blue", "bold") if number == 0 else s("      ┃ ", "blue")
                self.say(lead + self._line(line, message.text))
            if message.keyboard is not None:
                self.keyboard = message.keyboard
            row = [self._choice(Choice(b, message.message_id)) for r in message.buttons
                   for b in r]
            if row:
                self.say(s("      └ ", "blue") + "   ".join(row))
        keys = [self._choice(Choice(b)) for r in self.keyboard for b in r]
        if keys:
            self.say(s("  keys  ", "dim") + "  ".join(keys))
        self.say()

    def _choice(self, choice: Choice) -> str:
        self.choices.append(choice)
        label = choice.button.text
        if choice.button.request_contact:
            whose = (f"{self.member.name}, {self.member.mobile}" if self.member
                     else "the member you play")
            label = f"📱 {label} ({whose})"
        return self.style(f"[{choice_letter(len(self.choices) - 1)}]", "cyan", "bold") \
            + " " + label

    def _line(self, line: str, whole: str) -> str:
        s = self.style
        found = _CODE_LINE.match(line)
        if found and int(found.group(1)) in CATALOGUE:
            colour = "green" if int(found.group(1)) == SUCCESS else "red"
            return s(found.group(1), colour, "bold") + " " + s(found.group(2), colour)
        if whole.startswith("🧪"):
            return s(_VALIDATION_CODE.sub(lambda m: m.group(1) + s(m.group(2), "bold"),
                                          line), "yellow")
        return line

    def banner(self) -> None:
        s = self.style
        say = self.say
        say(s("🧪 loyalty-bot sandbox", "magenta", "bold"))
        say("The real bot, with the same handlers as on Telegram, answered here: no token, "
            "no network.")
        state = "fresh; --keep reuses it" if self.fresh else "kept from last time"
        say(s(f"Database: {self.database} ({state}) · Log: {self.data_dir / LOG_FILE}",
              "dim"))
        say()
        say(s("Demo members", "bold"))
        now = {m.mobile: m for m in demo.members(self.service)}
        for number, m in enumerate(demo.DEMO_MEMBERS, 1):
            view = now.get(m.mobile)
            points = f"{view.current_points:>6,} pts" if view else "     - pts"
            say(f"  {s(str(number), 'cyan', 'bold')}  {m.name:<12} {m.mobile}  {points}  "
                f"{m.story}")
            say(s("                                               "
                  + " · ".join(str(c) for c in m.claims), "dim"))
        anyone = [f"{what} → {code}" for what, code in demo.ANYONE[:-1]]
        anyone.append(f"/contact {demo.UNKNOWN_MOBILE} (a number not in the program) → 816")
        say(s("  Anyone: " + " · ".join(anyone), "dim"))
        say(s("  " + demo.RULES_TEXT, "dim"))
        say()
        say("Type what a member would type: /balance, /redeem, /redeem 500, /history, /help. "
            "The bot's buttons show as " + s("[a]", "cyan", "bold") + " "
            + s("[b]", "cyan", "bold") + "…: type the letter to press one ('a sends the "
            "text a). Numbers are always text: amounts and validation codes. Validation "
            "codes arrive in the chat.")
        say("Sandbox: /as MOBILE or /as N plays another member · /forget then /start tries a "
            "first visit · /reset starts again · /demo lists the members · /contact [NUMBER] "
            "shares a contact · /quit leaves.")
        say()

    def prompt(self) -> str:
        name = self.member.name if self.member and self.member.name else "you"
        return self.style.prompt(f"{name} › ", "cyan", "bold")

    # -- the loop

    def pick(self) -> bool:
        """Ask which demo member to play, and become them; False at the end of input."""
        count = len(demo.DEMO_MEMBERS)
        while True:
            answer = read_line(self.style.prompt(
                f"Pick a demo member to be (1-{count}, Enter for 1): ", "bold"))
            if answer is None:
                return False
            answer = answer.strip() or "1"
            if answer.lower() in ("/quit", "/exit"):
                return False
            chosen = demo.find(answer)
            target = chosen.mobile if chosen else answer
            self.send_text(f"/as {target}", echo=f"/as {target}")
            if self.member is not None:
                return True

    def handle(self, line: str) -> bool:
        """Act on one typed line; False to leave."""
        text = line.strip()
        if not text:
            return True
        words = text.split()
        command = words[0].lower()
        if command in ("/quit", "/exit"):
            return False
        if command == "/contact":
            if len(words) > 1:
                self.share_contact(" ".join(words[1:]), "any number")
            elif self.member is not None and self.member.mobile:
                self.share_contact(self.member.mobile, self.member.name or "the member")
            else:
                self.say("No member to share the contact of: pick one with /as N.")
            return True
        if text.startswith("'"):
            self.send_text(text[1:].strip() or text)
            return True
        pressed = choice_index(text)
        if pressed is not None and pressed < len(self.choices):
            self.press(self.choices[pressed])
            return True
        self.send_text(text)
        return True

    def run(self) -> int:
        """The session, from the banner to goodbye; the exit status."""
        try:
            self.start()
            self.refresh_member()
            self.banner()
            if self.pick():
                while True:
                    line = read_line(self.prompt())
                    if line is None:
                        self.say()
                        break
                    try:
                        if not self.handle(line):
                            break
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except Exception as error:
                        log.exception("the sandbox failed on %r", line)
                        self.say(self.style(f"sandbox error: {type(error).__name__}: {error} "
                                            f"(details in {self.data_dir / LOG_FILE})", "red"))
        except KeyboardInterrupt:
            self.say()
        finally:
            with _ignoring_interrupts():
                self.close()
        self.say(self.style("Left the sandbox. Bye!", "magenta"))
        return 0


def read_line(prompt: str) -> str | None:
    """One line from the user, or None at the end of input."""
    try:
        return input(prompt)
    except EOFError:
        return None


@contextlib.contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    """Let closing finish even if Ctrl-C is pressed again."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# ---------------------------------------------------------------- setting up


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Only one terminal sandbox per data directory (its database would be wiped)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with (data_dir / "terminal.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise PointsError(899, f"another loyalty-bot sandbox is using {data_dir}; give "
                                   "this one another --data-dir") from None
        yield


def _log_to_file(path: Path, verbose: bool) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "telegram.ext.Updater", "telegram.Bot", "telegram.ext.ExtBot"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)
    logging.captureWarnings(True)


def run_terminal(data_dir: Path, *, keep: bool = False, verbose: bool = False) -> int:
    """`loyalty-bot sandbox`: set up the sandbox in `data_dir` and run the session."""
    # Ctrl-C leaves the sandbox, whatever this process inherited: started in the
    # background by a non-interactive shell (`&`, nohup), SIGINT arrives ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    private_directory(data_dir)  # 0700 when created here: the database is in it
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    with _exclusive(data_dir):
        database = data_dir / DATABASE_FILE
        if not keep:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
        _log_to_file(data_dir / LOG_FILE, verbose)
        settings = load_bot_settings(
            require_token=False, telegram_bot_token="", webhook_url="",
            staff_telegram_ids=str(TERMINAL_USER_ID),
            **sandbox_overrides(f"sqlite:///{database.resolve()}"))
        service = PointsService(settings, senders=make_senders(settings))
        fresh = demo.seed_if_empty(service)
        # A kept database remembers the updates of the last session; this session's
        # stand-in numbers its updates from the start again.
        Chats(service).forget_updates(timedelta(0))
        readline_on = False
        if sys.stdin.isatty():
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401  (line editing and history for input())
                readline_on = True
        style = Style.detect(sys.stdout)
        style.readline = readline_on
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), _interrupt)
        return SandboxTerminal(settings, service, database, data_dir, fresh, sys.stdout,
                               style).run()


__all__ = ["TERMINAL_USER_ID", "SandboxTerminal", "Style", "run_terminal"]
