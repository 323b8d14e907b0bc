"""The front doors of Dabiao, with no SQL of their own: the FastAPI app (`app`) with the JSON API
(`routes/`, shapes in `schemas`), the HTML pages (`pages/`, `templates/`, `static/`, `translations/`) and
the `dabiao` command line (`cli`, assembled from `commands/`); shared dependencies and access rules (`deps`),
the one mapping of typed errors to answers (`errors`), the upload size limit (`limits`), Prometheus metrics
(`metrics`) and serving the built demo (`demo`). Each door calls the same service in `workflow/` or
`deadlines/`."""
