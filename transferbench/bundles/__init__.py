"""Results anyone can add: a sweep's records in one archive (``bundle``), checked (``verify``) and combined with
other machines' bundles of the same sweep into one cited board (``merge``).

- ``archive.py``: the file format (a gzip tar with a sha256 index) and safe reading;
- ``protocol.py``: what must be equal for two bundles of a workload to combine;
- ``make.py``: a results directory -> a bundle;
- ``verify.py``: every check a bundle must pass, one line per problem;
- ``merge.py``: verified bundles -> tables, plots, board and findings whose rows name their bundles.

Pure Python, no torch (docs/contributing.md says how a contribution is made and cited).
"""

from transferbench.bundles.archive import BundleError

__all__ = ["BundleError"]
