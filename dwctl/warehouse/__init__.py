"""The warehouse stage: the load job that runs in AWS, and proving the warehouse SQL locally.

Owns the load job (load_job.py: plain Python run by Glue, shipped as iac/glue_scripts/load_job.py
with its per-spec config as data), the DuckDB verifier that runs the rendered SQL through the
job's own planning functions (verifier.py) and the `sql` commands (commands.py).

May import: dwctl.spec, dwctl.render, dwctl.errors, dwctl.cli_options. load_job.py itself imports
only the standard library (and boto3 in main()), since it runs on Glue.
"""
