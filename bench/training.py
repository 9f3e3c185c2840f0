"""Federated model training on the demo: rounds, time per round, bytes per clinic vs the rows.

Fits ``LOGISTIC_REGRESSION(diabetic, age, bmi)`` (and ``LINEAR_REGRESSION(bmi, age)``) over the
embedded demo federation (hub and four silos over real gRPC on loopback, noise on, epsilon 1),
and, in the same run, the pooled logistic fit with statsmodels over the union of the clinics'
rows. Prints, per model: rounds, median wall time, time per round, and the bytes each clinic sent
to the hub per round (every protocol message, as protobuf wire bytes) beside the bytes of
shipping that clinic's training rows once (Arrow IPC of the three columns). Targets: federated
logistic regression within 3x of the pooled fit's time; at least 1000x fewer bytes per round
than shipping the rows.

    python bench/training.py            # full run
    python bench/training.py --smoke    # one repetition, few rounds
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import statsmodels.api as sm

import fedsql
from fedsql.demo.federation import DemoFederation
from fedsql.demo.generator import ensure_demo_data
from fedsql.transport import codec

LOGISTIC = "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi, max_iter => {rounds}) AS m FROM patients"
LINEAR = "SELECT LINEAR_REGRESSION(bmi, age) AS m FROM patients"
COLUMNS = "age, bmi, diabetic"
TARGET_TIME_RATIO = 3.0
TARGET_BYTES_RATIO = 1000.0


def rows_bytes(path: Path) -> int:
    """Bytes of one clinic's training rows as an Arrow IPC stream (complete rows only)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        table = con.sql(
            f"SELECT {COLUMNS} FROM patients "
            "WHERE age IS NOT NULL AND bmi IS NOT NULL AND diabetic IS NOT NULL"
        ).to_arrow_table()
    finally:
        con.close()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return len(sink.getvalue())


def pooled_arrays(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Design matrix and target over the union of the clinics' complete rows."""
    con = duckdb.connect()
    parts = []
    for i, path in enumerate(paths):
        con.execute(f"ATTACH '{path}' AS c{i} (READ_ONLY)")
        parts.append(f"SELECT {COLUMNS} FROM c{i}.patients")
    data = con.sql(
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) "
        "WHERE age IS NOT NULL AND bmi IS NOT NULL AND diabetic IS NOT NULL"
    ).fetchnumpy()
    con.close()
    x = np.c_[np.ones(len(data["age"])), data["age"], data["bmi"]].astype(np.float64)
    return x, np.asarray(data["diabetic"], dtype=np.float64)


def count_bytes(fed: DemoFederation) -> dict[str, int]:
    """Wrap every silo's send so that the wire bytes it sends to the hub are counted."""
    sent: dict[str, int] = defaultdict(int)
    for silo_id, agent in fed.silos.items():
        original: Callable[[object], None] = agent._send

        def send(
            msg: object, *, _id: str = silo_id, _orig: Callable[[object], None] = original
        ) -> None:
            sent[_id] += len(codec.to_bytes(msg))  # type: ignore[arg-type]
            _orig(msg)

        agent._send = send  # type: ignore[method-assign]
    return sent


def median_time(fn: Callable[[], object], reps: int) -> float:
    """Median wall time of ``reps`` calls."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print a table with the targets as ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10, help="max_iter of the logistic model")
    parser.add_argument("--smoke", action="store_true", help="one repetition, 4 rounds")
    args = parser.parse_args()
    reps, rounds = (1, 4) if args.smoke else (args.reps, args.rounds)

    files = ensure_demo_data()
    x, y = pooled_arrays(list(files.values()))
    pooled_s = median_time(lambda: sm.Logit(y, x).fit(disp=False), reps)
    shipped = {Path(p).stem: rows_bytes(Path(p)) for p in files.values()}

    results = []
    with DemoFederation(policy_overrides={"budget_epsilon": 1e6}) as fed:
        sent = count_bytes(fed)
        with fedsql.connect(fed.target, analyst="bench", epsilon=1.0) as conn:
            cur = conn.cursor()
            for name, sql in (("logistic", LOGISTIC.format(rounds=rounds)), ("linear", LINEAR)):
                cur.execute(sql)  # warm-up: plans, connections
                sent.clear()
                details: list[dict[str, object]] = []

                def fit(sql: str = sql, details: list[dict[str, object]] = details) -> None:
                    cur.execute(sql)
                    assert cur.privacy is not None
                    details.append(cur.privacy.details["model"])

                wall = median_time(fit, reps)
                ran = sum(int(d["rounds"]) for d in details)  # type: ignore[call-overload]
                per_round = [s for d in details for s in d["round_seconds"]]  # type: ignore[attr-defined]
                per_clinic = {s: b / ran for s, b in sent.items()}
                results.append(
                    (name, wall, ran / len(details), statistics.median(per_round), per_clinic)
                )

    print(
        f"pooled statsmodels Logit over {len(y):,} rows: {pooled_s * 1e3:8.1f} ms "
        f"(median of {reps})"
    )
    print()
    print(f"{'model':<9} {'rounds':>6} {'wall ms':>9} {'ms/round':>9} {'vs pooled':>9}")
    for name, wall, ran, round_s, _ in results:
        ratio = wall / pooled_s
        print(f"{name:<9} {ran:>6.1f} {wall * 1e3:>9.1f} {round_s * 1e3:>9.1f} {ratio:>8.2f}x")
    print()
    print(
        f"{'clinic':<14} {'rows bytes':>11} {'model':<9} {'B/round':>8} "
        f"{'rows/round':>10} {'rows/all':>9}"
    )
    for name, _, ran, _, per_clinic in results:
        for silo, rows in sorted(shipped.items()):
            per = per_clinic.get(silo, 0.0)
            total = per * ran
            print(
                f"{silo:<14} {rows:>11,} {name:<9} {per:>8.0f} {rows / per:>9.0f}x "
                f"{rows / total:>8.0f}x"
            )
    logistic = results[0]
    time_ratio = logistic[1] / pooled_s
    worst_bytes = min(shipped[s] / b for s, b in logistic[4].items())
    print()
    print(
        f"target: logistic wall / pooled fit <= {TARGET_TIME_RATIO:g}: {time_ratio:.2f} "
        f"({'met' if time_ratio <= TARGET_TIME_RATIO else 'missed'})"
    )
    print(
        f"target: rows bytes / bytes per round >= {TARGET_BYTES_RATIO:g}: worst clinic "
        f"{worst_bytes:.0f} ({'met' if worst_bytes >= TARGET_BYTES_RATIO else 'missed'})"
    )


if __name__ == "__main__":
    main()
