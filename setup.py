"""The install's one build step beyond pyproject.toml: the message catalogues
(core/locales/<language>/LC_MESSAGES/messages.po) are compiled to messages.mo with Babel
whenever the package is built, editable installs (`pip install -e .`) included, so that a
fresh machine's install has every language the code ships."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LOCALES = Path(__file__).resolve().parent / "core" / "locales"


def compile_catalogues() -> list[Path]:
    """Compile every .po under core/locales next to itself; the .mo files written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted(LOCALES.glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        mo = po.with_suffix(".mo")
        with mo.open("wb") as target:
            write_mo(target, catalog)
        written.append(mo)
    return written


class BuildWithCatalogues(build_py):
    """build_py that compiles the catalogues first (package data then includes them)."""

    def run(self) -> None:
        compile_catalogues()
        self.data_files = self._get_data_files()
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogues})
