"""Delivery metrics (DORA) from the deployments Apollo records: selectors computed in SQL
(compute), SVG plots drawn in Python (charts), the Metrics page (views) and its API export
(api, JSON and CSV)."""
