"""Day two: operate a deployed pipeline from the terminal.

Owns `dwctl status` (one screen: DMS instance, tasks, CDC latency and table statistics; the load
job's last runs; per table freshness, held and quarantined files and rows; the landed-file queue),
`dwctl reload TABLE` (DMS ReloadTables on the task holding the table, with its progress) and
`dwctl run` (start the load job now, optionally follow it). Each reads the environment's Terraform
outputs (deployed.py), so nobody types an ARN; AWS is reached only through aws.py.

May import: dwctl.spec, dwctl.render, dwctl.deploy, dwctl.warehouse, dwctl.errors, dwctl.cli_options.
"""
