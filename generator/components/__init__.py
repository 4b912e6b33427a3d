"""Components of the generated repository: each plans its files from the architecture."""
