"""``lbt report``: what a run learned, as one self-contained HTML page with plots and 95% intervals.

    from lbt_agents.report import write_report
    report = write_report(["runs/m1-quickstart"])   # -> runs/m1-quickstart/report/report.html
"""

from lbt_agents.report._load import RunData, load_run
from lbt_agents.report._report import Report, default_out, write_report
from lbt_agents.report._stats import Estimate, auroc, format_auroc, mcnemar_exact, mean_ci, paired_diff_ci, tp_auroc

__all__ = ["Estimate", "Report", "RunData", "auroc", "default_out", "format_auroc", "load_run", "mcnemar_exact",
           "mean_ci", "paired_diff_ci", "tp_auroc", "write_report"]
