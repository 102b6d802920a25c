"""On-demand prediction jobs: the queue (``queue``), the runner and ``pae worker`` loop (``runner``) and the
per-kind computations for one workspace (``consumption``, ``peak_usage``). The API enqueues them
(``services/prediction_jobs.py``); the DAG ``predictive_analytics_on_demand`` runs one by id."""
