"""Hostile and odd files (issue 15): bad values are row rejects, bad files are one-line messages, good data loads."""
import os
import re
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core.settings import Settings
from pipelines.ingest.load import EventSchemaError, column_limits, load_events
from tests.conftest import make_events

NOW = datetime(2026, 4, 2, tzinfo=timezone.utc)


def _count(engine, table="usage_events") -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"select count(*) from analytics.{table}")).scalar_one()


def _good(n_days: int = 2, end: date = date(2026, 3, 31)) -> pd.DataFrame:
    """Events as the text a CSV holds."""
    return make_events(1, n_days, end=end).astype(str).replace({"None": ""})


def _with_bad_rows(path, bad_rows: list[dict], **good_kw) -> tuple[pd.DataFrame, int]:
    """A CSV of good rows followed by ``bad_rows`` (overrides of the first good row); returns (frame, #good)."""
    good = _good(**good_kw)
    frame = pd.concat([good, pd.DataFrame([{**good.iloc[0].to_dict(), **b} for b in bad_rows])], ignore_index=True)
    frame.to_csv(path, index=False)
    return frame, len(good)


def _report(summary) -> pd.DataFrame:
    return pd.read_csv(summary.reject_report, dtype=str, keep_default_na=False)


# -- 1. one bad row no longer aborts the file --------------------------------------------------------------
def test_empty_extra_cell_is_stored_as_json_null_and_the_file_loads(clean_db, tmp_path):
    good = _good()
    good["region"] = ["eu"] + [""] * (len(good) - 1)
    path = tmp_path / "extra.csv"
    good.to_csv(path, index=False)
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert s.rows_inserted == len(good) and s.rows_rejected == 0
    with clean_db.connect() as conn:
        extras = conn.execute(sa.text("select extra from analytics.usage_events")).scalars().all()
    assert sorted(e["region"] or "" for e in extras) == [""] * (len(good) - 1) + ["eu"]
    assert all(e == {"region": None} for e in extras if e["region"] is None)


def test_credits_the_column_cannot_hold_are_rejected_and_the_rest_loads(clean_db, tmp_path):
    path = tmp_path / "credits.csv"
    _, n_good = _with_bad_rows(path, [{"credits": "1e20"}, {"credits": "99999999999999.9999999"},
                                      {"credits": "inf"}, {"credits": "-inf"}, {"credits": "NaN"},
                                      {"credits": "99999999999999"}])
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert (s.rows_inserted, s.rows_rejected) == (n_good + 1, 5)
    report = _report(s)
    assert report["line"].astype(int).tolist() == [n_good + 2 + i for i in range(5)]
    reasons = report["reason"].tolist()
    assert reasons[0] == reasons[1] == ("credits exceeds 99999999999999.999999 "
                                        "(analytics.usage_events.credits is numeric(20,6))")
    assert reasons[2] == "credits is not finite" and reasons[3] == "credits is not finite; credits is negative"
    assert reasons[4] == "credits is not a number"
    with clean_db.connect() as conn:
        assert conn.execute(sa.text("select max(credits) from analytics.usage_events")).scalar_one() == 99999999999999


def test_count_that_does_not_fit_the_column_is_rejected(clean_db, tmp_path):
    path = tmp_path / "count.csv"
    _, n_good = _with_bad_rows(path, [{"count": "3000000000"}, {"count": "1e30"}, {"count": "2147483647"}])
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert (s.rows_inserted, s.rows_rejected) == (n_good + 1, 2)
    assert set(_report(s)["reason"]) == {"count exceeds 2147483647 (analytics.usage_events.count is integer)"}


# -- 2. bad files: one line naming the file, never a traceback ---------------------------------------------
def _int_time_parquet(path):
    make_events(1, 2).assign(event_time=lambda f: np.arange(len(f)) + 1_700_000_000).to_parquet(path)


HOSTILE_FILES = {
    "empty.csv": (lambda p: p.write_bytes(b""),
                  re.escape("empty.csv: the file is empty (0 bytes); expected a header line and event rows")),
    "empty.parquet": (lambda p: p.write_bytes(b""), re.escape("empty.parquet: the file is empty (0 bytes)")),
    "blank.csv": (lambda p: p.write_bytes(b"\n\n"),
                  "blank.csv: no header line; expected a header line with the contract columns"),
    "random.csv": (lambda p: p.write_bytes(b"\x89PNG\r\n" + np.random.default_rng(0).bytes(4000)),
                   r"random.csv: not valid UTF-8 at byte 0 \(0x89, line 1\); re-save the file as UTF-8"),
    "random.parquet": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4000)),
                       r"random.parquet: not a readable Parquet file \(Parquet magic bytes not found"),
    "utf16.csv": (lambda p: p.write_bytes(_good().to_csv(index=False).encode("utf-16")),
                  "utf16.csv: the file is UTF-16, not UTF-8; re-save the file as UTF-8"),
    "int_time.parquet": (_int_time_parquet, (r"int_time.parquet: column event_time is int64; the contract needs a "
                                             r"timestamp \(or ISO 8601 text\)")),
    "unclosed.csv": (lambda p: p.write_text(_good().to_csv(index=False) + '2026-03-30,"ws0,u,,chat,1,ok,1\n'
                                            + _good().to_csv(index=False, header=False)),
                     ("unclosed.csv: not a well-formed CSV: the quoted value starting on line "
                      f"{len(_good()) + 2} is never closed")),
    "events.txt": (lambda p: p.write_text("x"), r"events.txt: unsupported file type '.txt'"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_a_bad_file_is_one_line_naming_the_file_and_loads_nothing(clean_db, tmp_path, name):
    write, message = HOSTILE_FILES[name]
    path = tmp_path / name
    write(path)
    with pytest.raises(EventSchemaError) as exc:
        load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    text = str(exc.value)
    assert "\n" not in text
    assert re.match(message, text), text
    assert _count(clean_db) == 0


def test_latin1_byte_names_its_offset_and_line(clean_db, tmp_path):
    good = _good()
    head = good.iloc[:2].to_csv(index=False).encode()  # header + 2 rows, ASCII
    bad = good.assign(feature="café").iloc[[0]].to_csv(index=False, header=False).encode("latin-1")
    path = tmp_path / "events.csv"
    path.write_bytes(head + bad)
    offset = len(head) + bad.index(b"\xe9")
    with pytest.raises(EventSchemaError) as exc:
        load_events(clean_db, path, tmp_path, now=NOW)
    assert str(exc.value) == (f"events.csv: not valid UTF-8 at byte {offset} (0xe9, line 4); "
                              "re-save the file as UTF-8")


def test_missing_path_is_a_message(clean_db, tmp_path):
    with pytest.raises(EventSchemaError, match="nothere.csv: no such file or folder"):
        load_events(clean_db, tmp_path / "nothere.csv", tmp_path, now=NOW)


def _folder(tmp_path, *bad_names):
    folder = tmp_path / "batch"
    folder.mkdir()
    good = make_events(1, 3, end=date.today() - timedelta(days=2))
    good.to_csv(folder / "a_good.csv", index=False)
    for name in bad_names:
        HOSTILE_FILES[name][0](folder / name)
    return folder, len(good)


def test_folder_loads_its_good_files_and_reports_the_bad_ones(clean_db, tmp_path):
    folder, n = _folder(tmp_path, "empty.csv", "random.parquet", "int_time.parquet")
    s = load_events(clean_db, folder, tmp_path / "rejects", now=NOW + timedelta(days=400))
    assert s.rows_inserted == n and _count(clean_db) == n and s.files_loaded == 1
    assert [f["file"] for f in s.files_failed] == ["empty.csv", "int_time.parquet", "random.parquet"]
    assert s.files_failed[0]["reason"] == "the file is empty (0 bytes); expected a header line and event rows"
    assert s.as_dict()["files_failed"] == s.files_failed


def test_folder_where_no_file_can_be_read_is_an_error(clean_db, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.csv").write_bytes(b"")
    (folder / "b.parquet").write_bytes(b"nope")
    with pytest.raises(EventSchemaError, match=r"^batch: none of the 2 file\(s\) could be read: a.csv: the file is "
                                               r"empty \(0 bytes\).*; b.parquet: not a readable Parquet file"):
        load_events(clean_db, folder, tmp_path, now=NOW)


def test_cli_exit_codes_and_messages(clean_db, db_url, tmp_path, monkeypatch, capsys):
    from pipelines import cli

    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=db_url, data_dir=tmp_path / "pae"))
    folder, n = _folder(tmp_path, "empty.csv")
    assert cli.main(["load-events", str(folder)]) == 1
    out, err = capsys.readouterr()
    assert '"files_failed"' in out and _count(clean_db) == n
    assert "error: empty.csv: the file is empty (0 bytes); expected a header line and event rows (file not loaded)" \
        in err.splitlines()
    assert cli.main(["load-events", str(folder / "empty.csv")]) == 2
    _, err = capsys.readouterr()
    assert err.strip() == "error: empty.csv: the file is empty (0 bytes); expected a header line and event rows"
    assert "Traceback" not in err
    assert cli.main(["load-events", str(folder / "a_good.csv")]) == 0  # already loaded: adds nothing
    assert _count(clean_db) == n


# -- 3. NUL bytes -------------------------------------------------------------------------------------------
def test_nul_byte_rejects_the_row_instead_of_truncating_it(clean_db, tmp_path):
    good = _good()
    good["note"] = "x"
    frame = pd.concat([good, good.iloc[[0]].assign(feature="se\x00arch"), good.iloc[[0]].assign(note="a\x00b"),
                       good.iloc[[0]].assign(workspace_id="ws\x000")], ignore_index=True)
    path = tmp_path / "nul.csv"
    frame.to_csv(path, index=False)
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert (s.rows_inserted, s.rows_rejected) == (len(good), 3)
    assert _report(s)["reason"].tolist() == ["feature contains a NUL byte", "extra column 'note' contains a NUL byte",
                                             "workspace_id contains a NUL byte"]
    with clean_db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from analytics.usage_events where feature = 'se'")).scalar() == 0
    parquet = tmp_path / "nul.parquet"
    events = make_events(1, 2)
    events.loc[0, "user_id"] = "u\x00x"
    events.to_parquet(parquet)
    s = load_events(clean_db, parquet, tmp_path / "rejects", now=NOW)
    assert s.rows_rejected == 1 and s.reject_reasons == {"user_id contains a NUL byte": 1}


# -- 4. values the database cannot hold -------------------------------------------------------------------
def test_ids_and_features_longer_than_the_schema_holds_are_rejected(clean_db, tmp_path):
    with clean_db.connect() as conn:
        limits = column_limits(conn)
    assert [(lim.max, lim.unit) for lim in limits.text["feature"]] == [(255, "characters")]
    assert [(lim.max, lim.unit) for lim in limits.text["workspace_id"]] == [(2000, "bytes")]
    path = tmp_path / "long.csv"
    _, n_good = _with_bad_rows(path, [{"feature": "f" * 300}, {"feature": "é" * 255},
                                      {"workspace_id": "é" * 1001}, {"user_id": "u" * 3000},
                                      {"agent_id": "a" * 2000}])
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert (s.rows_inserted, s.rows_rejected) == (n_good + 2, 3)
    assert _report(s)["reason"].tolist() == [
        "feature is longer than 255 characters (analytics.workspace_daily_metrics.dimension is varchar(255))",
        "workspace_id is longer than 2000 bytes (analytics.entities.external_id is an index key)",
        "user_id is longer than 2000 bytes (analytics.entities.external_id is an index key)",
    ]


# -- 5. lower bound on event_time --------------------------------------------------------------------------
def test_events_before_the_earliest_date_are_rejected(clean_db, tmp_path, monkeypatch):
    path = tmp_path / "old.csv"
    _, n_good = _with_bad_rows(path, [{"event_time": "1970-01-01T00:00:00Z"}, {"event_time": "1999-12-31T23:59:59Z"},
                                      {"event_time": "2000-01-01T00:00:00Z"}])
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert (s.rows_inserted, s.rows_rejected) == (n_good + 1, 2)
    assert set(_report(s)["reason"]) == {"event_time is before 2000-01-01 (PAE_EARLIEST_EVENT_DATE)"}
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW, earliest_event_date=date(2026, 3, 31))
    assert s.rows_inserted == 0 and s.reject_reasons == {
        "event_time is before 2026-03-31 (PAE_EARLIEST_EVENT_DATE)": s.rows_rejected}
    monkeypatch.setenv("PAE_EARLIEST_EVENT_DATE", "2020-06-01")
    assert Settings().earliest_event_date == date(2020, 6, 1)


# -- 6. event_id conflicts ---------------------------------------------------------------------------------
def _with_ids(frame: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    return frame.iloc[:len(ids)].assign(event_id=ids).reset_index(drop=True)


def test_same_event_id_with_different_content_is_a_conflict(clean_db, tmp_path):
    rows = _with_ids(_good(), ["e1", "e2", "e3"])
    first = pd.concat([rows, rows.iloc[[0]].assign(credits="999"), rows.iloc[[0]]], ignore_index=True)
    path = tmp_path / "ids.csv"
    first.to_csv(path, index=False)
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert (s.rows_inserted, s.rows_rejected, s.rows_already_loaded) == (3, 1, 1)  # identical copy: a duplicate
    report = _report(s)
    assert report["line"].tolist() == ["5"] and report["credits"].tolist() == ["999"]
    assert report["reason"].tolist() == [("event_id conflict: an earlier row of the file has this event_id with "
                                          "different content")]
    second = pd.concat([rows.iloc[[1]].assign(status="error"), rows.iloc[[2]],
                        rows.iloc[[0]].assign(event_id="e4")], ignore_index=True)
    path2 = tmp_path / "ids2.csv"
    second.to_csv(path2, index=False)
    s = load_events(clean_db, path2, tmp_path / "rejects", now=NOW)
    assert (s.rows_inserted, s.rows_rejected, s.rows_already_loaded) == (1, 1, 1)
    report = _report(s)
    assert report["line"].tolist() == ["2"] and report["event_id"].tolist() == ["e2"]
    assert report["reason"].tolist() == ["event_id conflict: already loaded with different content"]
    with clean_db.connect() as conn:
        stored = conn.execute(sa.text("select status from analytics.usage_events where event_key = "
                                      "md5('id:e2')::uuid")).scalar_one()
    assert stored == "ok" and _count(clean_db) == 4
    again = load_events(clean_db, path2, tmp_path / "rejects", now=NOW)  # idempotent, still a conflict
    assert (again.rows_inserted, again.rows_rejected) == (0, 1) and _count(clean_db) == 4


def test_event_id_conflict_across_files_of_a_folder(clean_db, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    rows = _with_ids(_good(), ["e1", "e2"])
    rows.to_csv(folder / "a.csv", index=False)
    rows.assign(credits="7").to_parquet(folder / "b.parquet")
    s = load_events(clean_db, folder, tmp_path / "rejects", now=NOW)
    assert (s.rows_inserted, s.rows_rejected) == (2, 2)
    report = _report(s)
    assert report["file"].tolist() == ["b.parquet"] * 2 and report["line"].tolist() == ["1", "2"]


@pytest.mark.parametrize("batch_rows", [0, 3, 10_000])
def test_batched_load_equals_file_by_file(clean_db, tmp_path, batch_rows):
    """Files inserted together (``batch_rows``) or one by one give the same rows, ids, source files and counts:
    a row repeated in a later file is that file's 'already loaded', an event_id repeated with other content is
    its conflict."""
    folder = tmp_path / "batch"
    folder.mkdir()
    rows = _with_ids(_good(), ["e1", "e2", "e3"])
    rows.to_csv(folder / "a.csv", index=False)
    pd.concat([rows.iloc[[0]], rows.iloc[[1]].assign(credits="7"), rows.iloc[[2]].assign(event_id="e9")]
              ).to_csv(folder / "b.csv", index=False)
    _good().iloc[:4].to_csv(folder / "c.csv", index=False)  # no event_id
    _good().iloc[2:6].to_csv(folder / "d.csv", index=False)  # two rows of c again
    s = load_events(clean_db, folder, tmp_path / "rejects", now=NOW, batch_rows=batch_rows)
    assert (s.rows_inserted, s.rows_rejected, s.rows_already_loaded) == (3 + 1 + 4 + 2, 1, 1 + 2)
    assert _report(s)["event_id"].tolist() == ["e2"] and _report(s)["file"].tolist() == ["b.csv"]
    with clean_db.connect() as conn:
        stored = conn.execute(sa.text("select source_file, count(*) from analytics.usage_events group by 1"
                                      " order by 1")).all()
    assert [tuple(r) for r in stored] == [("a.csv", 3), ("b.csv", 1), ("c.csv", 4), ("d.csv", 2)]
    again = load_events(clean_db, folder, tmp_path / "rejects", now=NOW, batch_rows=batch_rows)
    assert (again.rows_inserted, again.rows_already_loaded) == (0, s.rows_inserted + s.rows_already_loaded)


# -- line numbers, odd but loadable values ------------------------------------------------------------------
def test_reject_lines_are_source_lines_with_blank_lines_quoted_breaks_and_extra_fields(clean_db, tmp_path):
    good = _good()
    r = good.iloc[0].tolist()
    header = ",".join(good.columns)

    def line(values):
        return ",".join(values)

    text = "\n".join([
        header,                                              # 1
        "",                                                  # 2
        line(r),                                             # 3
        line(r[:4] + ['"multi\nline"'] + r[5:]),             # 4-5
        "",                                                  # 6
        line(r[:5] + ["-1"] + r[6:]),                        # 7: rejected
        line(r + ["x", "y"]),                                # 8: too many fields
        line(r[:6] + ["maybe"] + r[7:]),                     # 9: rejected
        line(r[:4] + ['"a\n\\.\nb"'] + r[5:]),               # 10-12: "\." alone on a line inside a value
        line(r[:4] + ["x"] + r[5:]),                         # 13
    ]) + "\n"
    path = tmp_path / "odd.csv"
    path.write_text(text)
    s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
    assert (s.rows_read, s.rows_inserted, s.rows_rejected) == (7, 4, 3)
    report = _report(s)
    assert report["line"].tolist() == ["7", "8", "9"]
    assert report["reason"].tolist()[1] == "line has 10 fields, the header has 8"
    with clean_db.connect() as conn:
        features = set(conn.execute(sa.text("select feature from analytics.usage_events")).scalars())
    assert features == {r[4], "multi\nline", "a\n\\.\nb", "x"}


def test_nanosecond_timestamps_load_truncated_to_microseconds(clean_db, tmp_path):
    path = tmp_path / "ns.csv"
    _good().iloc[:1].assign(event_time="2026-01-01T00:00:00.123456789Z").to_csv(path, index=False)
    assert load_events(clean_db, path, tmp_path, now=NOW).rows_inserted == 1
    with clean_db.connect() as conn:
        t = conn.execute(sa.text("select event_time from analytics.usage_events")).scalar_one()
    assert t == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)


def test_parquet_with_a_saved_index_keeps_its_columns(clean_db, tmp_path):
    path = tmp_path / "indexed.parquet"
    _with_ids(make_events(1, 2), ["e1", "e2"]).set_index("event_id").to_parquet(path)
    assert load_events(clean_db, path, tmp_path, now=NOW).rows_inserted == 2
    with clean_db.connect() as conn:
        keys = conn.execute(sa.text("select count(*) from analytics.usage_events where event_key in "
                                    "(md5('id:e1')::uuid, md5('id:e2')::uuid)")).scalar_one()
    assert keys == 2


# -- fuzz: any mix of hostile cells is rows in, rejects out, nothing else ---------------------------------
HOSTILE_CELLS = ["", " ", "1e20", "-1", "nan", "inf", "3000000000", "0", "1.5", "se\x00arch", "x" * 300,
                 "1970-01-01", "2100-01-01", "'", '"', ",", "a\nb", "\\.", "é", "NULL", "\ufeff", "🙂", "\r",
                 "2026-02-30", "9" * 40, "-0", "ok", "error", "ERROR "]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_fuzzed_files_never_fail_and_account_for_every_row(clean_db, tmp_path, fmt):
    rng = np.random.default_rng(15)
    good = _good(n_days=3)
    good["event_id"] = [f"e{i}" if i % 3 else "" for i in range(len(good))]
    good["note"] = "n"
    for round_ in range(4):
        frame = good.copy()
        cells = rng.integers(0, frame.size, size=frame.size // 4)
        for cell in cells:
            frame.iat[cell // frame.shape[1], cell % frame.shape[1]] = HOSTILE_CELLS[rng.integers(len(HOSTILE_CELLS))]
        path = tmp_path / f"fuzz{round_}.{fmt}"
        # CRLF rows: pandas quotes a value holding "\r" only when "\r" is in the line terminator
        frame.to_csv(path, index=False, lineterminator="\r\n") if fmt == "csv" else frame.to_parquet(path)
        before = _count(clean_db)
        s = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
        assert s.rows_read == len(frame) == s.rows_valid + s.rows_rejected
        assert _count(clean_db) - before == s.rows_inserted
        again = load_events(clean_db, path, tmp_path / "rejects", now=NOW)
        assert again.rows_inserted == 0 and again.rows_rejected == s.rows_rejected
        if s.rows_rejected:
            assert len(_report(s)) == s.rows_rejected
    assert os.path.isdir(tmp_path / "rejects")
