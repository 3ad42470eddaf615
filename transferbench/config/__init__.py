"""Configuration's one home: a profile (config/*.yaml) in, checked run settings and jobs out.

- ``schema.yaml``: the profile's JSON schema (package data; the Snakefile validates against it);
- ``profile.py``: load a profile, check it against the schema and everything the schema cannot say;
- ``run.py``: one run's settings resolved against the settings table and the workload registry, checked,
  and their config hash (``ConfigError`` names the key and the value);
- ``grid.py``: the profile's train jobs (sweep lines or single runs, adaptive search's dependencies);
- ``search_keys.py``: the searches' keys (``lr_refine``'s check; ``wd_search``, ``log2_wds``: the 2-D search);
- ``data_grid.py``: the profile's prepare_data jobs and what a workload that reads one passes to train;
- ``layout.py``: every path under ``results_dir``.

Pure Python, no torch: the Snakefile imports this subpackage. One run's API is re-exported here
(``from transferbench.config import ConfigError, resolve_run_config``); the rest is imported from its
submodule (``from transferbench.config.profile import load_profile``). The submodules import each other
directly, never this file, so that the package has no import cycle.
"""

from transferbench.config.run import ConfigError, config_hash, defaults_for, resolve_run_config, settings_for

__all__ = ["ConfigError", "config_hash", "defaults_for", "resolve_run_config", "settings_for"]
