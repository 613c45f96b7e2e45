"""The bench's own logic, without broker or database: statistics, verdicts, profile summaries, and that the
data set's events are valid and give exactly the rows reporting's projectors give (so P4/P5 measure the real
thing). No timing assertions. Run: .venv/bin/pytest benchmarks/tests -q -p no:cacheprovider
"""

from types import SimpleNamespace

from services.common.contracts.events import parse_event
from services.reporting import projections, repository
from tests.support.report_facts import generate_facts
from services.reporting.models import ArchivedEvent

from benchmarks import dataset, hand_sql
from benchmarks.workloads import _p5_size
from benchmarks.profiling import summarise
from benchmarks.results import Result, Target, median, percentile, ratio


def test_median_percentile_and_ratio():
    assert median([3, 1, 2, None]) == 2
    assert median([]) is None
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([0, 10], 99) == 9.9
    assert ratio(5, 0) is None and ratio(None, 2) is None and ratio(3, 2) == 1.5


def test_p5_rebuilds_the_whole_archive_when_three_rebuilds_of_it_fit_the_budget():
    cfg = SimpleNamespace(p5_budget_s=30.0, p5_round_s=8.0)
    assert _p5_size(60_000, 6_000, cfg, 1_000) == 60_000  # 3 x 10 s
    assert _p5_size(60_000, 5_000, cfg, 1_000) == 40_000  # 3 x 12 s: what fits in a round
    assert _p5_size(60_000, 10, cfg, 1_000) == 1_000  # never below the pilot
    assert _p5_size(500, 10, cfg, 1_000) == 500  # never beyond the archive


def test_a_result_is_met_missed_or_error():
    targets = [Target("ratio", ">=", 0.7)]
    assert Result("P1", "w", {"ratio": 0.8}, targets).status == "met"
    assert Result("P1", "w", {"ratio": 0.5}, targets).status == "missed"
    assert Result("P1", "w", {}, targets, error="boom").status == "error"
    assert Result("P6", "w", {"a": 100, "b": 400}, [Target("a", "<=", 150), Target("b", "<=", 300)]).status == "missed"
    assert str(Target("p99_s", "<=", 1.0)) == "≤ 1"


def test_profile_summary_separates_idle_from_busy_frames():
    raw = "\n".join(
        [
            "run (eventlet/hubs/hub.py:1);wait (eventlet/hubs/poll.py:2) 60",
            "wrapper (/repo/services/common/service/entrypoints.py:10);submit_proposal (/repo/services/calls/commands.py:5) 30",
            "wrapper (/repo/services/common/service/entrypoints.py:10);"
            "do_execute (site-packages/sqlalchemy/engine/default.py:9) 10",
        ]
    )
    summary = summarise(raw)
    assert (summary["samples"], summary["idle_pct"], summary["busy_samples"]) == (100, 60.0, 40)
    top = {f["frame"]: f["pct_of_busy"] for f in summary["top_inclusive"]}
    assert top["wrapper (services/common/service/entrypoints.py)"] == 100.0
    assert top["submit_proposal (services/calls/commands.py)"] == 75.0
    assert summary["top_self"][0] == {"frame": "submit_proposal (services/calls/commands.py)", "pct_of_busy": 75.0}


def _csv_lines(model_rows):
    writers = {}
    for model, values in model_rows:
        writer = writers.setdefault(model.__table__.name, dataset.TableWriter(model.__table__))
        writer.add(values)
    return {name: writer.buffer.getvalue() for name, writer in writers.items()}


def test_the_data_set_events_are_valid_and_project_to_the_rows_the_bench_loads():
    facts = generate_facts(7, 40, 120)
    bodies = list(dataset.events_from_facts(facts, seed=7))
    assert {b["event_type"] for b in bodies} == set(dataset.ROWS_FROM_EVENT)
    assert len({b["event_id"] for b in bodies}) == len(bodies)

    loaded, projected = [], []
    for body in bodies:
        event = parse_event(body)  # every event passes the consumers' own validation
        loaded += list(dataset.ROWS_FROM_EVENT[body["event_type"]](body))
        writer = repository.FactWriter(session=None)  # collects the rows; never flushed here
        projections.project(SimpleNamespace(session=None), event, writer)
        projected += [
            (
                model,
                {
                    model.__mapper__.column_attrs[key].columns[0].name: value
                    for key, value in zip(repository.FactWriter.columns(model), values)
                },
            )
            for model, rows in writer.rows.items()
            for values in rows.values()
        ]
    assert _csv_lines(loaded) == _csv_lines(projected)


def test_the_archive_rows_are_what_copy_expects():
    writer = dataset.TableWriter(ArchivedEvent.__table__)
    body = next(dataset.events_from_facts(generate_facts(1, 4, 12), seed=1))
    writer.add_archived(body, "2026-01-01T00:00:00+00:00")
    line = writer.buffer.getvalue()
    assert line.startswith(f"{body['event_id']},call_opened,calls,") and line.endswith(",2026-01-01T00:00:00+00:00\n")


def test_hand_sql_money_is_cents():
    assert hand_sql.cents(1234567) == "12345.67" and hand_sql.cents(5) == "0.05"
