"""ipyimagegen's benchmarks: ``python -m bench [--quick] [--only NAME] [--checkpoint DIR]``.

Each benchmark module has ``run(options) -> list[Figure]``; it prints how it measures and its
other numbers as it goes, and the runner prints every figure, with its goal, in one table at
the end. Benchmarks are not tests: a figure that misses its goal is reported, never fatal.
"""
