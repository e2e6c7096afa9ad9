"""The community resource directory: HSDS 3.0 datasets read (`hsds`), checked and flattened (`records`),
their taxonomy terms filed under SDOH domains (`domains`, data in `taxonomy-domains.json`), their
schedules unfolded into open hours (`hours`). The import is `usecases/resources.py`; searches are
`resource_queries.py`; the tables are `persistence/directory_tables.py`. docs/resources.md tells the story.
"""

from __future__ import annotations

from .domains import DOMAINS, TaxonomyMap, load_taxonomy_map
from .hsds import ImportLimits, ImportProblem, ResourceFiles

__all__ = ["DOMAINS", "ImportLimits", "ImportProblem", "ResourceFiles", "TaxonomyMap", "load_taxonomy_map"]
