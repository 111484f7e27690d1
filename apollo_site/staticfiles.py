"""Static files under content-hashed names, including the imports between our ES modules."""

from django.contrib.staticfiles.apps import StaticFilesConfig
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFiles(StaticFilesConfig):
    """django.contrib.staticfiles, minus what only the tests use: axe-core (the accessibility
    checker the browser tests inject) is never collected, hence never served."""

    ignore_patterns = [*StaticFilesConfig.ignore_patterns, "vendor/axe-core/*"]


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    """whitenoise's compressed manifest storage, also rewriting `import … from "./live.js"` in
    the pages' modules to the hashed name: otherwise a page's module (hashed, cached for a year)
    would import the unhashed live.js, which a deploy of Apollo can change under it."""

    support_js_module_import_aggregation = True
