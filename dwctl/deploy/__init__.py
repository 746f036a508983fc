"""The deploy stage: drive Terraform on the rendered iac/, one environment at a time.

Owns the one module that runs Terraform and builds its command lines (terraform.py), the
safety rules of init/plan/apply/destroy/output (actions.py), the plan summary and data-loss
flags (plan_summary.py), the prevent_destroy guards (guards.py) and their commands (commands.py).

May import: dwctl.spec, dwctl.render, dwctl.errors, dwctl.cli_options.
"""
