"""Render one of the report's real section files alone, for tests of what a section says."""

import shutil

from deblurlab import report


def use_only_section(tmp_path, monkeypatch, filename: str) -> None:
    """Make ``report.render`` render just ``report/sections/<filename>`` (a copy in
    ``tmp_path``)."""
    sections = tmp_path / "sections"
    sections.mkdir()
    shutil.copy(report.REPO_ROOT / "report" / "sections" / filename, sections)
    monkeypatch.setattr(report, "SECTIONS", sections)
    monkeypatch.setattr(report, "TEMPLATE", tmp_path / "report.md")
    (tmp_path / "report.md").write_text(
        "{% for section in sections %}{% include section %}\n{% endfor %}"
    )
