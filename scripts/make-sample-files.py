#!/usr/bin/env python3
"""Make the binary files of the sample handbook in docs-samples/: a budget workbook, an
all-hands slide deck and two scanned notices (English and Chinese).

The files are committed, so neither the quickstart nor CI runs this script. Run it again only
to change one of them, then check that the tests that ask about them (tests/api/samples.rs)
still describe them:

    python3 -m venv /tmp/samplesenv
    /tmp/samplesenv/bin/pip install xlsxwriter python-pptx Pillow
    apt-get install fonts-dejavu-core fonts-noto-cjk    # the scans' Latin and Chinese fonts
    /tmp/samplesenv/bin/python scripts/make-sample-files.py

| file                                      | what it is                                          |
|-------------------------------------------|-----------------------------------------------------|
| finance/budget-2027.xlsx                  | department budgets with a SUM row (cached values),  |
|                                           | approval dates, a quarterly headcount sheet and a   |
|                                           | hidden sheet of drafts                              |
| hr/all-hands-2026-q4.pptx                 | 5 slides with speaker notes, one of them hidden     |
| facilities/fire-safety-notice-berlin.png  | a scanned notice from the Berlin office (150 dpi)   |
| zh/shanghai-spring-festival-notice.png    | 上海办公室春节放假通知, scanned (150 dpi)             |

The output is deterministic (fixed text, fixed metadata dates, fixed noise seed).
"""

from __future__ import annotations

import datetime as dt
import random
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "docs-samples"
FIXED = dt.datetime(2026, 11, 30, 9, 0, 0)


def budget_workbook(path: Path) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"title": "Department Budgets 2027", "author": "Finance", "created": FIXED})
    bold = wb.add_format({"bold": True})
    money = wb.add_format({"num_format": "#,##0"})
    pct = wb.add_format({"num_format": "0.0%"})
    date = wb.add_format({"num_format": "yyyy-mm-dd"})

    ws = wb.add_worksheet("Department budgets")
    headers = [
        "Department",
        "Cost centre",
        "Budget owner",
        "Budget 2027 (EUR)",
        "Change vs 2026",
        "Approved on",
    ]
    rows = [
        ("Engineering", "CC-100", "Priya Raman", 6_480_000, 0.085, dt.date(2026, 11, 20)),
        ("Sales", "CC-200", "Marcus Feld", 3_150_000, 0.062, dt.date(2026, 11, 20)),
        ("Marketing", "CC-210", "Julia Brandt", 1_240_000, -0.031, dt.date(2026, 11, 24)),
        ("Customer Success", "CC-220", "Tomás Ortega", 1_870_000, 0.124, dt.date(2026, 11, 24)),
        ("People & Culture", "CC-300", "Mei Lin", 940_000, 0.047, dt.date(2026, 11, 26)),
        ("Finance", "CC-310", "Daniel Okafor", 610_000, 0.012, dt.date(2026, 11, 26)),
        ("IT and Security", "CC-320", "Sven Lindqvist", 1_320_000, 0.093, dt.date(2026, 11, 27)),
        ("Facilities", "CC-330", "Hannah Weiss", 1_050_000, 0.158, dt.date(2026, 11, 27)),
    ]
    ws.write_row(0, 0, headers, bold)
    for r, (dept, cc, owner, budget, change, approved) in enumerate(rows, start=1):
        ws.write_string(r, 0, dept)
        ws.write_string(r, 1, cc)
        ws.write_string(r, 2, owner)
        ws.write_number(r, 3, budget, money)
        ws.write_number(r, 4, change, pct)
        ws.write_datetime(r, 5, dt.datetime.combine(approved, dt.time()), date)
    total_row = len(rows) + 1
    total = sum(r[3] for r in rows)
    ws.write_string(total_row, 0, "Total", bold)
    # A formula with its cached value, as a spreadsheet program saves it: kb reads the value.
    ws.write_formula(total_row, 3, f"=SUM(D2:D{total_row})", money, total)
    ws.set_column(0, 0, 20)
    ws.set_column(2, 5, 18)

    hc = wb.add_worksheet("Headcount plan")
    hc.write_row(0, 0, ["Department", "Q1 2027", "Q2 2027", "Q3 2027", "Q4 2027"], bold)
    plan = [
        ("Engineering", 112, 118, 124, 128),
        ("Sales", 41, 44, 46, 48),
        ("Customer Success", 27, 29, 31, 33),
        ("People & Culture", 12, 12, 13, 13),
    ]
    for r, row in enumerate(plan, start=1):
        hc.write_row(r, 0, row)

    drafts = wb.add_worksheet("Scenario drafts")
    drafts.write_row(0, 0, ["Scenario", "Engineering budget"])
    drafts.write_row(1, 0, ["Hiring freeze (not adopted)", 5_900_000])
    drafts.hide()
    wb.close()


def all_hands_deck(path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Pt

    prs = Presentation()
    prs.core_properties.title = "All-Hands Q4 2026"
    prs.core_properties.author = "Office of the CEO"
    prs.core_properties.created = FIXED
    prs.core_properties.modified = FIXED
    prs.core_properties.last_modified_by = "Office of the CEO"
    prs.core_properties.revision = 1

    title = prs.slides.add_slide(prs.slide_layouts[0])
    title.shapes.title.text = "All-Hands Q4 2026"
    title.placeholders[1].text = "Kestrelwood Systems · 3 December 2026"

    slides = [
        (
            "Toronto office move",
            [
                "The Toronto team moves to 220 King Street West, 14th floor, on 1 March 2027",
                "Last working day at the old office: Friday 26 February 2027",
                "Work from home during the move week; IT sets up desks over the weekend",
            ],
            "New access badges are handed out at reception on 24 February. "
            "Parking permits for the new building are requested through Facilities.",
            False,
        ),
        (
            "Draft: reorganisation options",
            ["Not for the meeting: board review pending"],
            "Hidden until the board has decided.",
            True,
        ),
        (
            "2027 company goals",
            [
                "Annual recurring revenue of EUR 48 million",
                "Customer retention above 94%",
                "Every team has a documented on-call rota by the end of Q2",
            ],
            "Goals are owned by the leadership team; progress is shown at each all-hands.",
            False,
        ),
        (
            "Wellbeing days in 2027",
            [
                "Two company-wide wellbeing days: Friday 2 July and Friday 8 October 2027",
                "Offices are closed; the support rota covers customers as on public holidays",
            ],
            "Wellbeing days do not count against annual leave. Teams on the support rota "
            "take a day in lieu within 30 days.",
            False,
        ),
    ]
    for heading, bullets, notes, hidden in slides:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = heading
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for bullet in bullets[1:]:
            body.add_paragraph().text = bullet
        for paragraph in body.paragraphs:
            for run in paragraph.runs:
                run.font.size = Pt(20)
        slide.notes_slide.notes_text_frame.text = notes
        if hidden:
            slide._element.set("show", "0")
    prs.save(str(path))
    # python-pptx stamps the zip entries with the current time: fix them for a stable file.
    restamp(path)


def restamp(path: Path) -> None:
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in entries:
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, data)


def scan(path: Path, lines: list[tuple[str, int]], font_path: str, seed: int) -> None:
    """A page drawn at 150 dpi in black on white with a little scanner noise."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 1240, 1754  # A4 at 150 dpi
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = 140
    for text, size in lines:
        if not text:
            y += size
            continue
        font = ImageFont.truetype(font_path, size)
        draw.text((120, y), text, font=font, fill=0)
        y += int(size * 1.6)
    rng = random.Random(seed)
    pixels = page.load()
    for _ in range(1500):
        x, yy = rng.randrange(width), rng.randrange(height)
        pixels[x, yy] = rng.choice((60, 140, 200))
    page = page.rotate(0.6, resample=Image.BICUBIC, fillcolor=255)
    page.save(str(path), dpi=(150, 150), optimize=True)


def main() -> None:
    budget_workbook(ROOT / "finance" / "budget-2027.xlsx")
    all_hands_deck(ROOT / "hr" / "all-hands-2026-q4.pptx")
    latin = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    cjk = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
    scan(
        ROOT / "facilities" / "fire-safety-notice-berlin.png",
        [
            ("FIRE SAFETY NOTICE", 44),
            ("Kestrelwood Systems, Berlin office", 28),
            ("", 30),
            ("If the fire alarm sounds, leave the building at once", 26),
            ("by the nearest staircase. Do not use the lifts.", 26),
            ("", 20),
            ("Assembly point: the courtyard of Invalidenstrasse 117,", 26),
            ("opposite the main entrance.", 26),
            ("", 20),
            ("Fire wardens report to the assembly point with the", 26),
            ("visitor list and check that every floor is empty.", 26),
            ("", 20),
            ("Evacuation drills are held twice a year.", 26),
            ("The next drill is on 11 March 2027 at 10:30.", 26),
            ("", 20),
            ("Questions: facilities-berlin@kestrelwood.com", 26),
        ],
        latin,
        seed=17,
    )
    scan(
        ROOT / "zh" / "shanghai-spring-festival-notice.png",
        [
            ("上海办公室春节放假通知", 48),
            ("", 30),
            ("全体上海员工：", 30),
            ("", 16),
            ("根据国家规定，2027 年春节放假时间为", 30),
            ("2 月 6 日至 2 月 12 日，共 7 天。", 30),
            ("2 月 13 日（星期六）正常上班。", 30),
            ("", 16),
            ("放假期间办公室关闭，前台不收快递。", 30),
            ("如需在假期进入办公室，请提前三个工作日", 30),
            ("向行政部申请。", 30),
            ("", 16),
            ("上海行政与人力资源部", 30),
            ("2026 年 12 月 1 日", 30),
        ],
        cjk,
        seed=23,
    )


if __name__ == "__main__":
    main()
