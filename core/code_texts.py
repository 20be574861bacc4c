"""The texts that carry a validation code: the SMS (also what the chat channel sends) and the
e-mail, from the operators' templates or, without one, the catalogue's text in the
member's language.

Operators set a template in a setting or a file (`SMS_TEMPLATE` or `SMS_TEMPLATE_FILE`,
`EMAIL_SUBJECT`, `EMAIL_TEMPLATE` or `EMAIL_TEMPLATE_FILE`): in India an SMS must match the
template registered with the operator (DLT), word for word, so a template is sent as
written, in every language. Placeholders: `{code}`, `{points}`, `{value}` (the points'
worth in CURRENCY), `{minutes}` (of validity), `{brand}` (BRAND_NAME) and `{name}` (the
member's). A template is checked when the settings are read (`check`): one without
`{code}` (the subject excepted), or with any other placeholder, is a configuration error,
888, naming the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from string import Formatter
from typing import TYPE_CHECKING

from core import i18n
from core.delivery import CodeMessage

if TYPE_CHECKING:
    from core.settings import Settings

PLACEHOLDERS = ("code", "points", "value", "minutes", "brand", "name")


def check(template: str, *, needs_code: bool = True) -> str:
    """`template` when it is one; ValueError saying what is wrong (the caller names the
    setting)."""
    try:
        fields = list(Formatter().parse(template))
    except ValueError as error:  # a lone { or }
        raise ValueError(f"not a template ({error}); write {{{{ and }}}} for a brace") \
            from None
    names = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            raise ValueError(f"unknown placeholder {{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}}; known: "
                             + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
        names.add(name)
    if needs_code and "code" not in names:
        raise ValueError("the template has no {code} placeholder: the validation code would "
                         "not be sent")
    return template


def read_template(path: str, *, needs_code: bool = True) -> str:
    """The template in file `path` (UTF-8), checked; ValueError when it cannot be read or
    is no template."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8").strip("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {type(error).__name__}") from None
    return check(text, needs_code=needs_code)


@dataclass(frozen=True)
class CodeTexts:
    """How a code's SMS and e-mail read, for one engine's settings."""

    sms_template: str  # empty: the catalogue's text in the member's language
    email_subject: str
    email_template: str
    brand: str
    default_language: str
    currency: str
    region: str

    @classmethod
    def of(cls, settings: Settings) -> CodeTexts:
        return cls(settings.sms_template_text, settings.email_subject,
                   settings.email_template_text, settings.brand_name,
                   settings.default_language, settings.currency,
                   settings.default_phone_region)

    def _texts(self, message: CodeMessage) -> i18n.Texts:
        language = message.language or self.default_language
        return i18n.texts(language, zone=UTC, currency=self.currency, region=self.region)

    def _values(self, message: CodeMessage, texts: i18n.Texts) -> dict[str, str]:
        return {"code": message.code, "points": texts.number(message.points),
                "value": texts.money(message.value),
                "minutes": texts.number(message.valid_minutes), "brand": self.brand,
                "name": message.name or texts("word.member")}

    def sms(self, message: CodeMessage) -> str:
        """The SMS (and chat) text of `message`."""
        texts = self._texts(message)
        values = self._values(message, texts)
        if self.sms_template:
            return self.sms_template.format(**values)
        return texts("code.sms", **values)

    def email(self, message: CodeMessage) -> tuple[str, str]:
        """The e-mail's subject and body."""
        texts = self._texts(message)
        values = self._values(message, texts)
        subject = (self.email_subject.format(**values) if self.email_subject
                   else texts("code.email_subject", **values))
        body = (self.email_template.format(**values) if self.email_template
                else texts("code.email_body", **values))
        return subject, body


__all__ = ["PLACEHOLDERS", "CodeTexts", "check", "read_template"]
