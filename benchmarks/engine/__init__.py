"""The training engine: the pre-training loop, the fit / predict loops of the downstream heads,
batch composition and the distributed plumbing. It knows methods through their interface only
and imports nothing of the tasks, the runner or the reports."""
