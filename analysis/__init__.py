"""analysis stage: what survived printing and photography.

Reads ``BATCH/batch.json`` and ``BATCH/captures/*.sqlite`` and writes
``BATCH/report/`` with the measures of Kurakin, Goodfellow & Bengio 2016,
"Adversarial examples in the physical world" (https://arxiv.org/abs/1607.02533).

Public API:

- :func:`analysis.report.build_report` ``(batch_dir, sessions=None, formats=("html", "pdf", "csv")) -> Path``
- :func:`analysis.cli.register` ``(app)`` adds ``photoproof report BATCH [--session S ...] [--format ...]``

Modules: ``load`` (files to data), ``quality`` (a session's quality medians), ``metrics`` (pure measures, paired
survival among them), ``stats`` (Wilson and item-bootstrap intervals, widened at the edges), ``summary`` and
``tables`` (figures and exports), ``table_parts`` (a wide table split to fit), ``channel`` (the
per-session channel check: its verdict by ``contracts.verdict``, why, what to do), ``channel_tables`` (its
tables), ``prediction`` (does a session simulated with a profile give the tiles a real camera's verdicts: the
prediction check), ``attacks_compared`` (which of two attacks survives the camera better, paired by photo with an
exact sign test), ``diagnosis`` (every measured cause of a clean loss), ``sides`` (the left/right side test), ``paper``
(the attack × ε destruction table as Markdown and LaTeX), ``scene`` (target and fooling rates with and
without the adversarial patch, from ``capture --scene``), ``sweep``, ``plots``
(PNG, SVG and PDF) and ``plots_sweep`` (rates against a transform's strength and the patch's size),
``gallery``, ``methods``, ``html``, ``pdf``, ``report`` (orchestration), ``report_parts`` (its optional parts: scene
sessions, the sweep, the calibrated profiles), ``calibration`` (the calibrated profiles' tables and figure),
``report_files`` (its figure files, HTML, PDF and report.json), ``content`` (what the report holds, whatever its
format), ``cli``,
``synthetic`` (fake capture data for tests and benchmarks), ``faces`` (a face batch's recall, paired hiding,
transfer and channel check), ``faces_report`` (its report files and gallery with boxes), ``faces_sweep``
(its sweep per transform and the stability baseline's verdict) and ``faces_api`` (its figures as dicts for
``photoproof.summary`` and ``channel_check``).
Nothing here imports torch.
"""
