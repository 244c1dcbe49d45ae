"""What only the local Delta sink has: its read path and its maintenance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fo_assets.catalog import spec_for
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.sinks.batches import at, current, land, vendors

VENDORS = spec_for("VendorsV2")
_READ = """
import sys
from pathlib import Path
from fo_assets.catalog import spec_for
from fo_assets.sinks.local_delta import LocalDeltaSink
table = LocalDeltaSink(Path(sys.argv[1])).read(spec_for("VendorsV2"))
print(table.num_rows, sorted(table.column("VendorAccountNumber").to_pylist()))
"""


def test_reading_a_table_never_aborts_the_process_at_exit(tmp_path: Path) -> None:
    # deltalake 1.6's to_pyarrow_table() aborts about half of all processes at interpreter exit (exit
    # code 134); 20 clean exits in a row would happen by chance about once in a million if ours did too.
    sink = LocalDeltaSink(tmp_path / "delta")
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V2", "2")]), at(1))]), VENDORS)
    sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", "V3", "3")]), at(2))]), VENDORS)

    command = [sys.executable, "-c", _READ, str(tmp_path / "delta")]
    outcomes = []
    for _ in range(5):  # four at a time
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for run in runs:
            out, err = run.communicate(timeout=60)
            outcomes.append((run.returncode, out.strip(), err))

    assert [(code, out) for code, out, _ in outcomes] == [(0, "3 ['V1', 'V2', 'V3']")] * 20, outcomes[0][2]


def test_maintenance_compacts_and_keeps_every_row(tmp_path: Path) -> None:
    sink = LocalDeltaSink(tmp_path / "delta")
    for day in range(1, 5):
        sink.upsert(land(tmp_path, VENDORS, [(vendors([("usmf", f"V{day}", str(day))]), at(day))]), VENDORS)
    before = current(sink.read(VENDORS), "VendorAccountNumber")

    report = sink.maintain(VENDORS)

    assert report["files_removed"] == 4 and report["files_added"] == 1
    assert report["retain_hours"] == 720
    assert current(sink.read(VENDORS), "VendorAccountNumber") == before
    assert len(list((tmp_path / "delta" / "vendors_v2").glob("*.parquet"))) == 5  # history kept for 30 days
