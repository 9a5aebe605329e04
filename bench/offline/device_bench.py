"""Device run: the pipeline bench's two 1k bars/s runs (at-least-once, exactly_once; 150 bars/s left out for time)."""
import sys

sys.path.insert(0, "bench")
import pipeline_bench as pb

pb.RUNS = ((1000, "at_least_once"), (1000, "exactly_once"))
pb.run()
