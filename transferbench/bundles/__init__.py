"""Results anyone can add: a sweep's records in one archive (``bundle``), checked (``verify``) and combined with
other machines' bundles of the same sweep into one cited board (``merge``).

- ``archive.py``: the file format (a gzip tar with a sha256 index) and safe reading;
- ``protocol.py``: what must be equal for two bundles of a workload to combine;
- ``make.py``: a results directory -> a bundle;
- ``verify.py``: every check a bundle must pass, one line per problem;
- ``rerun.py``: ``verify --rerun K``, K sampled records retrained here and compared (imports torch when asked);
- ``merge.py``: verified bundles -> tables, plots, board and findings whose rows name their bundles.

Pure Python, no torch, but for ``rerun.py``. docs/bundles.md says what each verb checks; results/contrib/README.md
how a contribution is made and cited.
"""

from transferbench.bundles.archive import BundleError

__all__ = ["BundleError"]
