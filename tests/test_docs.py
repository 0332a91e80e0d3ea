"""The README documents every setting (its configuration table names each CPTQA_ variable)."""

from __future__ import annotations

import pytest
from conftest import ROOT

from api import Settings

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme_configuration_table(name: str) -> None:
    assert f"| `CPTQA_{name.upper()}` |" in README
