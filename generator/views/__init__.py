"""Views of an architecture: plan reports, docs and ADRs, diagrams, the review page, diffs and explain."""
