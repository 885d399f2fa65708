"""The runner's parts: command-line flags (``cli``), what a run will do (``plan``), the result
records and summary (``records``) and the output-folder checks (``outputs``). ``benchmarks.run``
wires them to the engine and the tasks."""
