"""Pipeline steps of the Predictive Analytics Engine: plain functions, called by DAGs and the `pae` CLI."""
