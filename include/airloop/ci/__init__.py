"""Model CI (C1, P1): ``airloop ci`` tests a change to a use case or to airloop like code.

The base ref's use case trains the champion and the working tree's use case and code train the
candidate, each in an embedded home of its own seeded by a short replay of the same recent
window; both are scored on the same held-out rows with the candidate use case's own gate, and
the serving contract is checked (request fields, the model's inputs, the example request through
``/v1/predict``, ``/invocations`` against in-process scoring). A Markdown and an HTML report say
what was decided and why; the exit code says it to the CI job.

- ``changes``: what changed against the base ref, and the base's use case folder;
- ``homes``: the scratch homes, their window, their seeding and the base's cache;
- ``compare``: the same rows, both models' metrics, the gate, the slices that moved;
- ``contract``: what a caller of the service sees change, and the service tried in-process;
- ``report``: the Markdown, HTML and JSON reports;
- ``run``: the whole check, one function (``airloop ci`` calls it).
"""
