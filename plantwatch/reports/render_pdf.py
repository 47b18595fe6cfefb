"""A report as PDF (fpdf2): A4 landscape, the header, the tables, the charts, the notes and the plans.

Latin text is set in DejaVu Sans (shipped with matplotlib); Chinese in a CJK font found on the
machine (`PLANTWATCH_CJK_FONT`, else Debian's fonts-droid-fallback or Noto CJK), used as the
fallback for every glyph DejaVu lacks. Without one the PDF cannot be written: ReportError says what
to install.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

from plantwatch.reports.errors import ReportError
from plantwatch.reports.sections import Sections, Table

CJK_FONTS = (
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",  # Debian: fonts-droid-fallback
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian: fonts-noto-cjk
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian: fonts-wqy-microhei
)
RED = (192, 57, 43)


def cjk_font() -> Path:
    """The font Chinese text is set in."""
    chosen = os.environ.get("PLANTWATCH_CJK_FONT")
    if chosen:
        if not Path(chosen).is_file():
            raise ReportError(f"PLANTWATCH_CJK_FONT={chosen}: no such font file")
        return Path(chosen)
    for candidate in CJK_FONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise ReportError(
        "no font with Chinese glyphs for the PDF: install fonts-droid-fallback "
        "(apt-get install fonts-droid-fallback) or set PLANTWATCH_CJK_FONT to a .ttf file"
    )


def render_pdf(sections: Sections, charts: dict[str, bytes], dated_ns: int) -> bytes:
    """The PDF bytes, with `dated_ns` (when the report was read) as its creation date."""
    from fpdf import FPDF  # a second to import: only when a PDF is written
    from matplotlib import get_data_path

    latin = Path(get_data_path()) / "fonts" / "ttf"
    cjk = cjk_font()
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_creation_date(datetime.fromtimestamp(dated_ns / 1e9, UTC))
    pdf.set_title(sections.title)
    pdf.set_creator("plantwatch")
    pdf.add_font("latin", "", str(latin / "DejaVuSans.ttf"))
    pdf.add_font("latin", "B", str(latin / "DejaVuSans-Bold.ttf"))
    pdf.add_font("cjk", "", str(cjk))
    pdf.add_font("cjk", "B", str(cjk))
    pdf.set_fallback_fonts(["cjk"], exact_match=False)
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_font("latin", "B", 15)
    pdf.multi_cell(0, 8, sections.title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("latin", "", 9.5)
    for label, value in sections.header:
        pdf.set_font("latin", "B", 9.5)
        pdf.cell(32, 5.5, label)
        pdf.set_font("latin", "", 9.5)
        pdf.multi_cell(0, 5.5, value, new_x="LMARGIN", new_y="NEXT")
    for table in sections.tables:
        _table(pdf, table, sections.exceeded)
    for chart in sections.charts:
        png = charts.get(chart.name)
        if png is None:
            continue
        if pdf.get_y() > pdf.h - 80:
            pdf.add_page()
        pdf.set_font("latin", "B", 9.5)
        pdf.multi_cell(0, 6, chart.caption, new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(png), w=170)
        pdf.ln(2)
    pdf.set_font("latin", "", 9)
    pdf.ln(2)
    for note in sections.notes:
        pdf.multi_cell(0, 5, f"• {note}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("latin", "B", 11)
    pdf.multi_cell(0, 7, sections.plans_title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("latin", "", 9)
    for plan in sections.plans:
        pdf.multi_cell(0, 5, f"• {plan}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _table(pdf: object, table: Table, exceeded: str) -> None:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    assert isinstance(pdf, FPDF)
    pdf.ln(3)
    pdf.set_font("latin", "B", 11)
    pdf.multi_cell(0, 7, table.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("latin", "", 8.5)
    rows = table.rows or [[table.empty] + [""] * (len(table.headers) - 1)]
    with pdf.table(
        text_align="LEFT",
        line_height=5,
        headings_style=FontFace(emphasis="BOLD", fill_color=(242, 242, 242)),
        width=pdf.epw if len(table.headers) > 4 else pdf.epw / 2,
        align="LEFT",
    ) as grid:
        heading = grid.row()
        for header in table.headers:
            heading.cell(header)
        for cells in rows:
            row = grid.row()
            for cell in cells:
                style = FontFace(color=RED, emphasis="BOLD") if cell == exceeded else None
                row.cell(cell, style=style)
