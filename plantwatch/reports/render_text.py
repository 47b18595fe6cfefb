"""A report as plain text (the text part of its mail, complete on its own): the header, one line
per table row with each cell labelled, the notes and the plans."""

from __future__ import annotations

from plantwatch.reports.sections import Sections


def render_text(sections: Sections, lang: str) -> str:
    """The text, in the sections' language (`lang` picks the punctuation)."""
    colon, separator = ("：", "；") if lang == "zh" else (": ", "; ")
    lines = [sections.title, ""]
    lines += [f"{label}{colon}{value}" for label, value in sections.header]
    for table in sections.tables:
        lines += ["", f"【{table.title}】" if lang == "zh" else f"== {table.title} =="]
        if not table.rows:
            lines.append(table.empty)
        for row in table.rows:
            lines.append(separator.join(f"{h}{colon}{c}" for h, c in zip(table.headers, row, strict=True)))
    lines.append("")
    lines += [f"- {note}" for note in sections.notes]
    lines += ["", f"【{sections.plans_title}】" if lang == "zh" else f"== {sections.plans_title} =="]
    lines += [f"- {plan}" for plan in sections.plans]
    return "\n".join(lines) + "\n"
