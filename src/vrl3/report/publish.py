"""A report's output folder: the report is built in a staging folder, then each finished output replaces its
earlier version; files a report did not write are never deleted."""

import os
import shutil
from pathlib import Path

from vrl3.errors import UserError

REPORT_FOLDERS = ("figures", "tables")  # replaced as a whole by each report
REPORT_OUTPUTS = (*REPORT_FOLDERS, "report.md")
REPORT_TITLE = "# VRL3 reproduction report"  # report.md's first line (vrl3.report.report_md)
WRITTEN_LIST = ".vrl3-report-files"  # the files of figures/ and tables/ a report wrote, one per line


def files_below(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for name in REPORT_FOLDERS if (folder / name).is_dir()
                  for path in (folder / name).rglob("*") if not path.is_dir())


def _holds_our_report(out: Path) -> bool:
    """report.md is there and begins as vrl3 report writes it (a user's own report.md is not replaced)."""
    try:
        with open(out / "report.md", encoding="utf-8", errors="replace") as handle:
            return handle.readline().rstrip("\n") == REPORT_TITLE
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False


def check_out(out: Path) -> None:
    """`out` may hold anything; only an earlier report's own outputs (it has report.md) are ever replaced, and
    figures/ or tables/ only while they hold nothing the earlier report did not write."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    if out.is_dir() and not _holds_our_report(out):
        taken = [name for name in REPORT_OUTPUTS if (out / name).exists()]
        if taken:
            raise UserError(f"--out {out} already has {taken[0]} but no report.md of vrl3 report, so it is not an "
                            f"earlier report: move it away or give another folder (a report replaces figures/, "
                            f"tables/ and report.md)")
    written = out / WRITTEN_LIST
    if written.is_file():  # reports of vrl3 before this list existed are replaced as they are
        ours = set(written.read_text().splitlines())
        foreign = [name for name in files_below(out) if name not in ours]
        if foreign:
            raise UserError(f"{out / foreign[0]} was not written by vrl3 report and a report replaces "
                            f"{foreign[0].split('/')[0]}/: move that file away, or give another --out")


def publish(out: Path, staged: Path) -> None:
    """Move each finished output (figures/, tables/, report.md) from `staged` into `out`, replacing its earlier
    version only once the new one is complete; anything else in `out` (e.g. runs/) is left alone."""
    (staged / WRITTEN_LIST).write_text("".join(f"{name}\n" for name in files_below(staged)))
    # report.md first: it marks `out` as a report's folder, so a rerun after a crash in between may replace the
    # rest; the list of written files last, as it describes the new figures/ and tables/
    order = {"report.md": 0, WRITTEN_LIST: 2}
    for new in sorted(staged.iterdir(), key=lambda path: order.get(path.name, 1)):
        target = out / new.name
        if target.exists():
            old = out / f".{new.name}.old-{os.getpid()}"
            target.rename(old)
            new.rename(target)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            new.rename(target)
