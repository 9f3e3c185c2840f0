"""Round trip of a trivial query through a real deployment: hub, 2 silo processes, mTLS, loopback.

Sets up a throwaway federation (CA, enrolment authority, signed roster, two clinics' processes),
then times ``SELECT COUNT(*) FROM patients`` end to end from an mTLS analyst client. The target is
a median of at most 50 ms; for scale, a trivial two-node round in Flower 1.42's deployment
runtime takes about 9 s on this class of machine (quoted, not measured here).

    python bench/roundtrip.py            # 50 repetitions
    python bench/roundtrip.py --smoke    # 3 repetitions, for CI
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fedsql.demo.deployment import LoopbackDeployment
from fedsql.transport.messages import ExecuteRequest

TARGET_MS = 50.0
FLOWER_S = 9.0
SILOS = ("mumbai", "seoul")


def main() -> None:
    """Set up, measure, print, tear down."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="3 repetitions, for CI")
    args = parser.parse_args()
    reps = 3 if args.smoke else args.reps
    with (
        tempfile.TemporaryDirectory(prefix="fedsql-roundtrip-") as tmp,
        LoopbackDeployment(Path(tmp), SILOS, n_min=2, c_max=0) as deployment,
        deployment.client(timeout_s=30) as client,
    ):
        request = ExecuteRequest(
            sql="SELECT COUNT(*) FROM patients", analyst="analyst", epsilon="0.01"
        )
        client.execute(request)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            client.execute(request)
            times.append((time.perf_counter() - t0) * 1e3)
    median = statistics.median(times)
    print("trivial 2-silo COUNT(*), separate processes, mTLS on loopback")
    print(f"  median   {median:8.1f} ms   (target <= {TARGET_MS:g} ms: "
          f"{'met' if median <= TARGET_MS else 'NOT met'})")  # fmt: skip
    print(
        f"  p90      {statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else median:8.1f} ms"
    )
    print(f"  Flower 1.42 deployment runtime, trivial 2-node round (quoted): {FLOWER_S:g} s "
          f"= {FLOWER_S * 1e3 / median:,.0f}x this median")  # fmt: skip


if __name__ == "__main__":
    main()
