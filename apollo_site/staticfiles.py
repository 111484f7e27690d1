"""Static files under content-hashed names, including the imports between our ES modules."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    """whitenoise's compressed manifest storage, also rewriting `import … from "./live.js"` in
    the pages' modules to the hashed name: otherwise a page's module (hashed, cached for a year)
    would import the unhashed live.js, which a deploy of Apollo can change under it."""

    support_js_module_import_aggregation = True
